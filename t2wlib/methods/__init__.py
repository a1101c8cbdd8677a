"""Every method that gives a head for a task: the baselines (retrieval, ridge, hypernetwork,
memorisation) and the registry that Table 1, the novelty table and notebook 10 read."""
