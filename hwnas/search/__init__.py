"""Search strategies over a space, objectives and constraints from the profiles, Pareto outputs."""
