"""Corpus kinds that break tensors: dimensions, initializer data, element types, external data
and size bombs (declared sizes far beyond any memory)."""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from corpus_edit import Variant, copy, first_of, input_dims, pick, weight
from corpus_structure import with_extra_output

HUGE = 2 ** 40


def bad_dims(model, rng):
    # -1 on the batch axis is "dynamic", as some exporters write it; an input with a zero dimension is
    # empty, which ONNX allows (ONNX's own node tests reduce empty sets): both may compile
    for variant, axis, value, refuse in (("input_batch_minus1", 0, -1, False), ("input_batch_negative", 0, -3, True),
                                         ("input_minus1", 1, -1, True), ("input_negative", 1, -7, True),
                                         ("input_zero", 1, 0, False), ("input_huge", 1, HUGE, True),
                                         ("input_int64_max", 1, 2 ** 63 - 1, True)):
        m = copy(model)
        input_dims(m)[axis].dim_value = value
        yield Variant(variant, m, must_refuse=refuse)
    m = copy(model)
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = -5
    yield Variant("output_negative", m)
    m = copy(model)  # outputs are inferred again: a stale declared output shape is harmless
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 0
    yield Variant("output_zero", m, must_refuse=False)
    for variant, value in (("weight_negative", -1), ("weight_zero", 0)):
        m = copy(model)
        weight(m).dims[0] = value
        yield Variant(variant, m)
    m = copy(model)
    m.graph.value_info.append(helper.make_tensor_value_info(pick(m, "first").output[0], TensorProto.FLOAT, [-2, 3]))
    yield Variant("value_info_negative", m)
    m = copy(model)
    m.graph.input[0].type.tensor_type.ClearField("shape")
    yield Variant("input_without_shape", m)
    m = copy(model)  # the keyword spotter reshapes its input first: an extra axis of 1 still fits
    input_dims(m).add().dim_value = 1
    yield Variant("input_rank_plus_one", m, must_refuse=False)


def bad_initializer(model, rng):
    w_name = weight(model).name

    def edited(edit, variant, refuse=True):
        m = copy(model)
        edit(next(t for t in m.graph.initializer if t.name == w_name))
        return Variant(variant, m, must_refuse=refuse)
    yield edited(lambda w: setattr(w, "raw_data", w.raw_data[:-1]), "one_byte_short")
    yield edited(lambda w: setattr(w, "raw_data", w.raw_data[: len(w.raw_data) // 2]), "half")
    yield edited(lambda w: setattr(w, "raw_data", w.raw_data + bytes(8)), "eight_bytes_long")
    yield edited(lambda w: w.ClearField("raw_data"), "no_data")
    yield edited(lambda w: setattr(w, "data_type", TensorProto.DOUBLE), "wider_dtype")
    yield edited(lambda w: setattr(w, "data_type", same_size_other_type(w.data_type)), "other_dtype_same_size")
    yield edited(lambda w: setattr(w, "data_type", TensorProto.UNDEFINED), "undefined_dtype")
    yield edited(lambda w: setattr(w, "data_type", TensorProto.STRING), "string_dtype")
    yield edited(typed_one_short, "typed_field_one_short")
    yield edited(lambda w: w.int64_data.extend([1, 2, 3]), "raw_and_typed")
    yield edited(lambda w: setattr(w, "name", ""), "no_name")
    m = copy(model)
    m.graph.initializer.append(m.graph.initializer[0])
    yield Variant("listed_twice", m)
    for variant, value in (("nan", np.nan), ("inf", np.inf), ("zero", 0.0)):
        m = copy(model)  # non-finite or zero floats (in the int8 model: quantization scales)
        t = max((t for t in m.graph.initializer if t.data_type == TensorProto.FLOAT), key=lambda t: len(t.raw_data))
        t.raw_data = np.full(len(t.raw_data) // 4, value, np.float32).tobytes()
        yield Variant(f"float_{variant}", m, must_refuse=False)


def same_size_other_type(data_type: int) -> int:
    return {TensorProto.FLOAT: TensorProto.INT32, TensorProto.INT8: TensorProto.UINT8,
            TensorProto.INT32: TensorProto.FLOAT}.get(data_type, TensorProto.FLOAT16)


def typed_one_short(w: onnx.TensorProto) -> None:
    """The data moved from raw_data to the typed field, one element short."""
    values = numpy_helper.to_array(w).reshape(-1)[:-1]
    w.ClearField("raw_data")
    (w.float_data if w.data_type == TensorProto.FLOAT else w.int32_data).extend(values.tolist())


def unknown_elem_type(model, rng):
    m = copy(model)
    m.graph.input[0].type.tensor_type.elem_type = 999
    yield Variant("input_999", m)
    m = copy(model)
    m.graph.output[0].type.tensor_type.elem_type = 999
    yield Variant("output_999", m)
    m = copy(model)
    weight(m).data_type = 999
    yield Variant("initializer_999", m)
    m = copy(model)
    m.graph.value_info.append(helper.make_tensor_value_info(pick(m, "first").output[0], 999, None))
    yield Variant("value_info_999", m)
    for variant, elem_type in (("input_undefined", TensorProto.UNDEFINED), ("input_double", TensorProto.DOUBLE),
                               ("input_string", TensorProto.STRING), ("input_complex", TensorProto.COMPLEX64)):
        m = copy(model)
        m.graph.input[0].type.tensor_type.elem_type = elem_type
        yield Variant(variant, m)
    m = copy(model)
    x = m.graph.input[0]
    x.type.CopyFrom(helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [1])))
    yield Variant("input_sequence", m)
    m = copy(model)
    m.graph.input[0].ClearField("type")
    yield Variant("input_without_type", m)


SECRET = b"secret: a file outside the model's folder\n" * 64


def externalized(model, location, data=None, offset=None, length=None, link=None):
    """A writer: model.onnx in the case folder with its largest weight in external data at
    `location`; `data` (default: the weight's bytes) is written there when it is a plain file name.
    A `secret.bin` sits beside the case folder (what an escape would read); `link` = (name, target)
    adds a symlink in the case folder."""
    def write(folder):
        m = copy(model)
        w = weight(m)
        payload = w.raw_data if data is None else data
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        w.external_data.add(key="location", value=location)
        for key, value in (("offset", offset), ("length", length)):
            if value is not None:
                w.external_data.add(key=key, value=str(value))
        with open(os.path.join(folder, "..", "secret.bin"), "wb") as f:
            f.write(SECRET)
        if link:
            os.symlink(link[1], os.path.join(folder, link[0]))
        if location == "weights.bin":
            with open(os.path.join(folder, location), "wb") as f:
                f.write(payload)
        with open(os.path.join(folder, "model.onnx"), "wb") as f:
            f.write(m.SerializeToString())
    return write


def external_data(model, rng):
    yield Variant("inside_the_folder", externalized(model, "weights.bin"), must_refuse=False)
    for variant, location in (("absolute_passwd", "/etc/passwd"), ("absolute_dev_zero", "/dev/zero"),
                              ("dotdot", "../secret.bin"), ("dotdot_nested", "sub/../../secret.bin"),
                              ("backslash_dotdot", "..\\secret.bin"), ("empty_location", ""),
                              ("the_folder_itself", "."), ("nul_byte", "weights\x00.bin"),
                              ("missing_file", "absent.bin")):
        yield Variant(variant, externalized(model, location))
    yield Variant("symlink_out", externalized(model, "link.bin", link=("link.bin", "../secret.bin")))
    yield Variant("symlinked_folder_out", externalized(model, "up/secret.bin", link=("up", "..")))
    yield Variant("file_too_short", externalized(model, "weights.bin", data=weight(model).raw_data[:7]))
    yield Variant("offset_beyond_file", externalized(model, "weights.bin", offset=10 ** 12))
    yield Variant("length_too_long", externalized(model, "weights.bin", length=len(weight(model).raw_data) + 100))
    yield Variant("length_huge", externalized(model, "weights.bin", length=HUGE))
    yield Variant("offset_negative", externalized(model, "weights.bin", offset=-8))


def size_bomb(model, rng):
    m = copy(model)
    for d in input_dims(m)[1:]:
        d.dim_value = 2 ** 20
    yield Variant("input", m)
    m = copy(model)
    w = weight(m)
    del w.dims[:]
    w.dims.extend([2 ** 31, 2 ** 31])
    yield Variant("initializer_declared", m)
    m = copy(model)
    reshape = first_of(m, "Reshape")
    m.graph.initializer.append(numpy_helper.from_array(np.array([1, HUGE], np.int64), "bomb_shape"))
    reshape.input[1] = "bomb_shape"
    yield Variant("reshape_target", m)
    shape = numpy_helper.from_array(np.array([2 ** 20, 2 ** 20, 2 ** 10], np.int64), "bomb_shape")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "bomb_one")
    x, x_type = model.graph.input[0].name, model.graph.input[0].type.tensor_type.elem_type
    rank = len(input_dims(model))
    for variant, node, inits, out_rank, elem in (
            ("reshape_to_huge", helper.make_node("Reshape", [x, "bomb_shape"], ["extra_out"]), [shape], 3, x_type),
            ("constant_of_shape", helper.make_node("ConstantOfShape", ["bomb_shape"], ["extra_out"]), [shape], 3,
             TensorProto.FLOAT),
            ("expand", helper.make_node("Expand", ["bomb_one", "bomb_shape"], ["extra_out"]), [one, shape], 3,
             TensorProto.FLOAT),
            ("tile", helper.make_node("Tile", [x, "bomb_repeats"], ["extra_out"]),
             [numpy_helper.from_array(np.array([2 ** 16] * rank, np.int64), "bomb_repeats")], rank, x_type),
            ("range", helper.make_node("Range", ["r0", "bomb_limit", "r1"], ["extra_out"]),
             [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("r0", 0), ("bomb_limit", HUGE), ("r1", 1))], 1, TensorProto.INT64)):
        node.name = f"bomb_{variant}"
        m = with_extra_output(model, node, out_rank, elem)
        m.graph.initializer.extend(inits)
        yield Variant(variant, m)


KINDS = {"bad_dims": bad_dims, "bad_initializer": bad_initializer, "unknown_elem_type": unknown_elem_type,
         "external_data": external_data, "size_bomb": size_bomb}
