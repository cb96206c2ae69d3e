"""edgecc's intermediate representation: typed tensors, ops, graphs, verifier, text form,
and a numpy reference interpreter. Knows nothing of ONNX, C or targets."""
from .errors import EdgeccError
from .graph import Graph, Op, Value
from .ops import OPS, infer_shapes
from .parser import parse
from .printer import print_graph
from .types import DTYPES, Quant, TensorType
from .verifier import VerifyError, verify
