"""`t2w demo`: a local web page where class names go in and a classifier comes out (docs/DEMO.md).

catalogue (the generators `t2w run` built), uploads (images scored as `t2w predict` scores them, with
their Grad-CAM maps), page (the Streamlit script), server (building the demo generators when there
are none, then serving the page on localhost)."""
