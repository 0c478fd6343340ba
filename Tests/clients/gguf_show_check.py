"""A real GGUF model through `haul serve`, checked with llama.cpp's `gguf`
package and Ollama's Python client.

  gguf_show_check.py write PATH
      Writes a small GGUF (v3, llama architecture, tokenizer arrays, a chat
      template, F32 and F16 tensors) with gguf's GGUFWriter.

  gguf_show_check.py check HOST MODEL PATH
      Pulls MODEL through `haul serve` at HOST with the client, then checks
      show() against what Ollama derives from the same file, by its rules
      (server/routes.go GetModelInfo and getModelData, fs/ggml/gguf.go
      Decode), computed here from gguf's own GGUFReader:
        - model_info: every key but general.name and tokenizer.chat_template,
          plus general.parameter_count (the sum of the tensors' element
          counts); a non-empty array is null unless verbose, where it is
          whole; a float32 as Go writes it (its shortest float32 text);
        - capabilities: completion (no pooling_type), then tools (the
          template reads .Tools) and thinking (it prints .Thinking between
          tags inside range .Messages) (server/images.go Capabilities);
        - tensors (verbose show): names, ggml type names, shapes.
      Prints one JSON object with what it compared; exits non-zero with the
      reason on stderr at the first difference.
"""
import json
import math
import sys
import urllib.request

import numpy as np
import gguf
import ollama
from ollama import ShowResponse


def fail(message):
    sys.stderr.write("check failed: %s\n" % message)
    sys.exit(1)


def write(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("Haul Tiny")
    w.add_context_length(4096)
    w.add_embedding_length(64)
    w.add_block_count(2)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    w.add_bool("general.haul_test", True)
    w.add_int8("general.haul_int8", -5)
    w.add_float64("general.haul_f64", 0.1)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["<s>", "</s>", "a", "b", "c", "ab", "bc", "abc"])
    w.add_token_types([3, 3, 1, 1, 1, 1, 1, 1])
    w.add_token_scores([0.0, 0.0, -1.0, -1.5, -2.0, -2.5, -3.0, -3.5])
    w.add_token_merges(["a b", "b c"])
    w.add_array("general.tags", [])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    w.add_tensor("token_embd.weight", np.zeros((8, 64), dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float16))
    w.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def value(field):
    """A field's value as Ollama's JSON carries it (arrays kept)."""
    v = field.contents()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def same(a, b, float32):
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) \
            and all(same(x, y, float32) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        # Go writes a float32 as its shortest float32 text (1e-05), as
        # numpy's str of a float32 does.
        return a == (float(str(np.float32(b))) if float32 else b)
    return a == b


def expected_model_info(reader, verbose):
    out = {}
    float32 = set()
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.name", "tokenizer.chat_template"):
            continue
        v = value(field)
        if field.types and field.types[0] == gguf.GGUFValueType.ARRAY:
            if field.types[-1] == gguf.GGUFValueType.FLOAT32:
                float32.add(name)
            if not verbose and len(v) > 0:
                v = None
        elif field.types and field.types[0] == gguf.GGUFValueType.FLOAT32:
            float32.add(name)
        out[name] = v
    out["general.parameter_count"] = int(sum(int(t.n_elements) for t in reader.tensors))
    return out, float32


def compare_model_info(got, reader, verbose):
    want, float32 = expected_model_info(reader, verbose)
    if sorted(got) != sorted(want):
        fail("model_info keys (verbose=%s): got %r, want %r" % (verbose, sorted(got), sorted(want)))
    for key in want:
        if not same(got[key], want[key], key in float32):
            fail("model_info[%r] (verbose=%s): got %r, want %r" % (key, verbose, got[key], want[key]))
    return len(want)


def check(host, model, path):
    client = ollama.Client(host=host)
    status = client.pull(model, stream=False, insecure=True)
    if status.status != "success":
        fail("pull gave %r" % status)
    reader = gguf.GGUFReader(path)

    shown = client.show(model)
    if not isinstance(shown, ShowResponse):
        fail("show() gave %r" % type(shown))
    keys = compare_model_info(dict(shown.modelinfo or {}), reader, verbose=False)
    if shown.capabilities != ["completion", "tools", "thinking"]:
        fail("capabilities %r" % shown.capabilities)
    if shown.details.format != "gguf":
        fail("details %r" % shown.details)

    request = urllib.request.Request(host + "/api/show", data=json.dumps({"model": model, "verbose": True}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as r:
        verbose = json.load(r)
    compare_model_info(verbose["model_info"], reader, verbose=True)
    want_tensors = [(t.name, t.tensor_type.name, [int(d) for d in t.shape]) for t in reader.tensors]
    got_tensors = [(t["name"], t["type"], t["shape"]) for t in verbose.get("tensors", [])]
    if got_tensors != want_tensors:
        fail("tensors: got %r, want %r" % (got_tensors, want_tensors))

    listed = next((m for m in client.list().models if m.model == model), None)
    if listed is None:
        fail("%s not listed" % model)
    print(json.dumps({"model_info_keys": keys, "tensors": len(want_tensors), "capabilities": shown.capabilities,
                      "parameter_count": verbose["model_info"]["general.parameter_count"]}))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
