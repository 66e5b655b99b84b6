"""verl-distill: distill large teacher LLMs into small students with reinforcement learning, on verl."""

__version__ = "0.1.0"
