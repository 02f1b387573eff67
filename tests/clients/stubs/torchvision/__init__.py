"""Import-time stand-in for torchvision (see ../torch): its submodules are modules of placeholders."""

import torch  # noqa: F401  (installs the placeholder finder for torchvision.*)
