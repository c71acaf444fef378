"""The stage the course's editors run on (the algorithms live one level up, in course_utils/).

ToyWorld: small procedural scenes with captions, exact masks and exact edits (scene, render, edits),
and what is built on it: the judge that reads renders (judge), the tiny Stable Diffusion's
architecture and tokenizer (model, tokenizer), its training (training), and the settings the
editors were tuned to on it (settings). The tiny model's weights are in course_utils/weights/.
"""
from .scene import *
from .render import *
from .edits import *
from .judge import *
from .settings import *
