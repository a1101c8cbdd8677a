"""The data a zoo is built from (paper §4.1, App. B): datasets and their on-disk formats, a user's
folders, the emoji dataset, class names, class texts and the task text vector v_c (task_condition,
wordnet), backbone features, and sub-task sampling with the seen / unseen / held-out split."""
