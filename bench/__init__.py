"""`make bench`: benchmarks whose figures are ratios to a baseline measured in the same run."""
