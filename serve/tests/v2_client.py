"""Check serve's KServe V2 API with the stock Triton HTTP client.

Usage: v2_client.py HOST:PORT MODEL_NAME

Every request goes to HOST:PORT, which the caller points at a local serve.
Prints one line per check and exits 1 at the first one that fails.
"""

import json
import sys
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def check(condition, message):
    """Print the check, and exit 1 if it failed."""
    if not condition:
        print(f"FAILED: {message}", flush=True)
        sys.exit(1)
    print(f"ok: {message}", flush=True)


def predict_raw(address, image):
    """Return POST /predict's probabilities for one CHW uint8 image."""
    request = urllib.request.Request(
        f"http://{address}/predict", data=image.tobytes(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    return np.array(body["probabilities"], dtype=np.float32)


def check_health(client, model):
    check(client.is_server_live(), "is_server_live")
    check(client.is_server_ready(), "is_server_ready")
    check(client.is_model_ready(model), "is_model_ready")
    check(client.is_model_ready(model, "1"), "is_model_ready at version 1")
    check(not client.is_model_ready(model, "2"), "version 2 is not ready")


def check_metadata(client, model):
    server = client.get_server_metadata()
    check(server["name"] == "cifaas", f"server metadata name: {server}")
    metadata = client.get_model_metadata(model)
    check(metadata["name"] == model, f"model metadata name: {metadata['name']}")
    check(metadata["versions"] == ["1"], f"model versions: {metadata['versions']}")
    inputs = metadata["inputs"]
    check(
        inputs == [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 32, 32]}],
        f"model inputs: {inputs}",
    )
    outputs = metadata["outputs"]
    check(
        outputs == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
        f"model outputs: {outputs}",
    )


def check_probabilities(probabilities, images, address, label):
    count = len(images)
    check(probabilities.shape == (count, 10), f"{label}: shape {probabilities.shape}")
    check(probabilities.dtype == np.float32, f"{label}: dtype {probabilities.dtype}")
    sums = probabilities.sum(axis=1)
    check(np.allclose(sums, 1.0, atol=1e-5), f"{label}: rows sum to {sums}")
    for index, image in enumerate(images):
        expected = predict_raw(address, image)
        check(
            np.array_equal(probabilities[index], expected),
            f"{label}: image {index} equals POST /predict",
        )


def check_fp32_batch(client, model, images, address):
    tensor = httpclient.InferInput("input", [2, 3, 32, 32], "FP32")
    tensor.set_data_from_numpy(images.astype(np.float32), binary_data=False)
    result = client.infer(model, [tensor], request_id="fp32-batch")
    response = result.get_response()
    check(response["id"] == "fp32-batch", f"FP32 batch: id {response.get('id')}")
    check(response["model_name"] == model, f"FP32 batch: model_name {response['model_name']}")
    check_probabilities(result.as_numpy("probabilities"), images, address, "FP32 [2,3,32,32]")


def check_uint8_hwc(client, model, image, address):
    tensor = httpclient.InferInput("pixels", [1, 32, 32, 3], "UINT8")
    tensor.set_data_from_numpy(image.transpose(1, 2, 0)[np.newaxis], binary_data=False)
    output = httpclient.InferRequestedOutput("probabilities", binary_data=False)
    result = client.infer(model, [tensor], model_version="1", outputs=[output])
    check(result.get_response()["model_version"] == "1", "UINT8 HWC: model_version 1")
    check_probabilities(result.as_numpy("probabilities"), [image], address, "UINT8 [1,32,32,3]")


def check_binary_inputs(client, model, images, address):
    """Send both datatypes as binary tensor data, tritonclient's default."""
    tensor = httpclient.InferInput("input", [2, 3, 32, 32], "FP32")
    tensor.set_data_from_numpy(images.astype(np.float32))
    result = client.infer(model, [tensor])
    check_probabilities(result.as_numpy("probabilities"), images, address, "binary FP32")
    tensor = httpclient.InferInput("input", [2, 32, 32, 3], "UINT8")
    tensor.set_data_from_numpy(images.transpose(0, 2, 3, 1).copy())
    output = httpclient.InferRequestedOutput("probabilities", binary_data=True)
    result = client.infer(model, [tensor], outputs=[output])
    check_probabilities(result.as_numpy("probabilities"), images, address, "binary UINT8 HWC")


def check_unknown_model(client, image):
    tensor = httpclient.InferInput("input", [1, 3, 32, 32], "UINT8")
    tensor.set_data_from_numpy(image[np.newaxis], binary_data=False)
    try:
        client.infer("no-such-model", [tensor])
    except InferenceServerException as error:
        check(error.status() == "404", f"unknown model: status {error.status()}")
        check(
            "model 'no-such-model' not found" in error.message(),
            f"unknown model: message {error.message()!r}",
        )
        return
    check(False, "unknown model: infer raised no error")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    address, model = sys.argv[1], sys.argv[2]
    client = httpclient.InferenceServerClient(url=address, network_timeout=60.0)
    images = np.random.default_rng(5).integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8)
    check_health(client, model)
    check_metadata(client, model)
    check_fp32_batch(client, model, images, address)
    check_uint8_hwc(client, model, images[1], address)
    check_binary_inputs(client, model, images, address)
    check_unknown_model(client, images[0])
    client.close()
    print("v2_client: all checks passed", flush=True)


if __name__ == "__main__":
    main()
