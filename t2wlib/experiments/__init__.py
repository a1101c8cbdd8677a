"""One module per table or figure of the paper (and of the project's own questions): scoring, the
regime check, Table 1 (table1), novelty, Figure 3 (figure3), Table 2 (table2), calibration, Table 3
(fusion), Table 4 (initialization), Figure 6 (enhancement), Figure 5 (landscape), Figure 4 (gradcam),
and is diffusion needed? (diffusion_vs_regression, solution_space)."""
