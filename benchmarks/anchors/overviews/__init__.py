"""A benchmarks-local Django app holding a minimal ``CourseOverview`` model for the anchors."""
