"""The fine-tuned detector as an MLflow pyfunc model: a column of images in, fake probability and label out.

Input: a DataFrame with the column `image`, each row an encoded image file's bytes (base64 in JSON, as
`mlflow models serve` takes them) or a path to one. Output: `probability` (fake) and `label` (1 = fake at the
checkpoint's threshold), the numbers `dfsweep predict` gives for the same files. The model holds the
checkpoint as its artifact and a two-line script naming this class: it loads where dfsweep is installed.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pandas as pd

# the base class MLflow's pyfunc loader expects; the rest of MLflow is imported where used
from mlflow.pyfunc import PythonModel

from .data import decode_image
from .data.decode import BadImage
from .errors import DfsweepError
from .model_uri import CHECKPOINT
from .predict import load_model, score_images

__all__ = ["DetectorModel", "model_spec", "decode_rows", "COLUMN"]

COLUMN = "image"
# the model's code: MLflow runs it to get the model object
_SCRIPT = "import mlflow.models\nfrom dfsweep.serving import DetectorModel\n\nmlflow.models.set_model(DetectorModel())\n"
_LOADS = ("mlflow", "torch", "numpy", "pandas", "pillow", "pyyaml", "scikit-learn")   # imported by loading the model


class DetectorModel(PythonModel):
    """mlflow.pyfunc's view of a dfsweep checkpoint; `params={"tta": True}` averages with the flipped image."""

    def load_context(self, context) -> None:
        self._lm = load_model(context.artifacts[CHECKPOINT])

    # the DataFrame hint tells MLflow the signature comes from model_spec, not from the hint
    def predict(self, context, model_input: pd.DataFrame, params: Optional[Dict[str, Any]] = None) -> pd.DataFrame:
        try:
            if COLUMN not in model_input.columns:
                raise DfsweepError(f"no column {COLUMN!r} (got {', '.join(map(str, model_input.columns))})")
            images = decode_rows(list(model_input[COLUMN]), self._lm.cfg.data.image_size)
        except DfsweepError as e:
            from mlflow.exceptions import MlflowException   # the scoring server's 400 then carries this reason
            raise MlflowException.invalid_parameter_value(str(e)) from None
        probs = score_images(self._lm, images, tta_flip=bool((params or {}).get("tta", False)))
        return pd.DataFrame({"probability": probs.astype(np.float64),
                             "label": (probs >= self._lm.threshold).astype(np.int64)})


def decode_rows(values: List[Any], size: int) -> np.ndarray:
    """Each row (bytes, base64 text or a path) -> size x size x 3 uint8, decoded as `dfsweep predict` decodes."""
    out = np.empty((len(values), size, size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="dfsweep-rows-") as tmp:
        for i, value in enumerate(values):
            try:
                out[i] = decode_image(_row_file(value, Path(tmp) / f"row{i}"), size)
            except (BadImage, DfsweepError) as e:
                raise DfsweepError(f"row {i}: {e}") from None
    return out


def _row_file(value: Any, spare: Path) -> Path:
    """A file holding the row's image: its own path, or `spare` written with its bytes (decoding reads files)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, str) and _is_file(value):
        return Path(value).expanduser()
    elif isinstance(value, str):
        try:
            data = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise DfsweepError("neither an image file that exists nor base64 of one") from None
    else:
        raise DfsweepError(f"an image is bytes, base64 text or a path, not {type(value).__name__}")
    spare.write_bytes(data)
    return spare


def _is_file(text: str) -> bool:
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):       # base64 text: longer than a file name may be, or not a path at all
        return False


def _signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    return ModelSignature(inputs=Schema([ColSpec("binary", COLUMN)]),
                          outputs=Schema([ColSpec("double", "probability"), ColSpec("long", "label")]),
                          params=ParamSchema([ParamSpec("tta", "boolean", False)]))


def _requirements() -> List[str]:
    """What loading the model imports, at the installed versions (dfsweep itself is not on PyPI)."""
    from importlib.metadata import version
    return [f"{name}=={version(name)}" for name in _LOADS]


def _example(image: np.ndarray) -> pd.DataFrame:
    """One row: `image` (a decoded array) as PNG bytes."""
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return pd.DataFrame({COLUMN: [buf.getvalue()]})


@contextlib.contextmanager
def model_spec(checkpoint: Path, example_image: np.ndarray, threshold: float) -> Iterator[Dict[str, Any]]:
    """mlflow.pyfunc.log_model's arguments for `checkpoint`, with one real image as the input example. The model
    is code (a script naming DetectorModel), not a pickle: loading it runs no deserialised code."""
    with tempfile.TemporaryDirectory(prefix="dfsweep-pyfunc-") as tmp:
        script = Path(tmp) / "detector.py"
        script.write_text(_SCRIPT)
        yield {"python_model": str(script), "artifacts": {CHECKPOINT: str(checkpoint)}, "signature": _signature(),
               "input_example": _example(example_image), "pip_requirements": _requirements(),
               "metadata": {"threshold": float(threshold)}}
