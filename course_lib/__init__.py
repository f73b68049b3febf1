"""course_lib: the tested PyTorch code behind the course's lessons."""

__version__ = "0.1.0"
