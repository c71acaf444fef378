"""ToyWorld: small procedural scenes with captions, exact masks and exact edits."""
from .scene import *
from .render import *
from .edits import *
from .judge import *
