"""instbench: measure what AWS EC2 instance types really deliver.

This module is imported by the stdlib-only agent as well as by the controller, so it must
import nothing outside the Python standard library.
"""

__version__ = "0.1.0"
