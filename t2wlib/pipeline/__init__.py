"""The notebook pipeline: profiles and their resolution into the library's configs (profiles, config),
each notebook's session, the runner and the command line, figures and tables with provenance, and
the generated RESULTS.md."""
