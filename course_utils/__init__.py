"""course_utils: the tested helpers of the course on text-guided image editing with diffusion models."""
__version__ = "0.1.0"
from .models import Models, load_models, ModelNotAvailableError
from .sampling import generate
from .photos import load_photo
