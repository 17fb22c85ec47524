"""Bundled Lite0 and Lite2 weights, the embedding cache and checkpoints that plain timm can load."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file

from training.ml import models
from training.ml.checkpoint import head_model_state, load_checkpoint, save_checkpoint
from training.ml.config import RoundConfig
from training.ml.embeddings import EmbeddingStore
from training.ml.heads import LinearHead, fit_head, predict_head

BUNDLED = [("tf_efficientnet_lite0", 296), ("tf_efficientnet_lite2", 386)]


@pytest.mark.parametrize(("arch", "tensors"), BUNDLED)
def test_bundled_weights_map_every_tensor_onto_timm(arch, tensors):
    state = models._bundled_state_dict(arch)
    assert len(state) == tensors == models.BUNDLED[arch][1]
    model = models.create_model(arch, num_classes=3, weights="bundled")
    own = model.state_dict()
    # every backbone tensor came from the package (the classifier is new: 3 classes)
    assert torch.equal(own["conv_stem.weight"], state["conv_stem.weight"])
    assert torch.equal(own["bn2.running_var"], state["bn2.running_var"])
    assert own["classifier.weight"].shape == (3, 1280)
    assert models.data_config(model)["mean"] == (0.5, 0.5, 0.5)
    assert models.data_config(model)["std"] == (0.5, 0.5, 0.5)


def _photo_crops(image: np.ndarray, size: int = 400) -> torch.Tensor:
    """A 3 x 3 grid of square crops of an HxWx3 photo, at 224 px, normalized for the bundled weights (0.5, 0.5)."""
    height, width, _ = image.shape
    crops = []
    for y in np.linspace(0, height - size, 3).astype(int):
        for x in np.linspace(0, width - size, 3).astype(int):
            crop = torch.tensor(image[y : y + size, x : x + size]).permute(2, 0, 1).float() / 255
            crop = torch.nn.functional.interpolate(crop[None], size=(224, 224), mode="bilinear", antialias=True)[0]
            crops.append((crop - 0.5) / 0.5)
    return torch.stack(crops)


@pytest.mark.parametrize("arch", [arch for arch, _ in BUNDLED])
def test_bundled_imagenet_head_names_real_photos(arch):
    # Given the package's own 1000-class head, and two real photos it never saw (scikit-learn's samples:
    # a temple by a lake, a daisy-like flower), nine crops of each
    from sklearn.datasets import load_sample_images

    temple, flower = load_sample_images().images
    model = models.create_model(arch, num_classes=1000, weights="bundled").eval()
    model.load_state_dict(models._bundled_state_dict(arch))

    # When the head names each crop
    names = timm.data.ImageNetInfo()
    with torch.inference_mode():
        named = {
            photo: [names.index_to_description(i).split(",")[0] for i in model(_photo_crops(pixels)).argmax(-1)]
            for photo, pixels in (("temple", temple), ("flower", flower))
        }

    # Then most crops get their photo's ImageNet class (chance: 1 in 1000; random weights name every crop alike)
    scene = {"palace", "bell cote", "monastery", "stupa", "boathouse", "lakeside"}
    assert sum(name in scene for name in named["temple"]) >= 7, named
    # Lite2 reads this macro photo's textured centre as a honeycomb (0.46 top-1 on the whole photo, daisy not in
    # its top 3): a flower name is asked of Lite0 only; for Lite2 the nine crops must agree on one reading.
    flower = {"daisy"} if arch == "tf_efficientnet_lite0" else {"daisy", "honeycomb"}
    assert sum(name in flower for name in named["flower"]) >= 7, named


def test_unknown_weights_are_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="bundled"):
        models.create_model("resnet10t", num_classes=2, weights="bundled")
    with pytest.raises(ValueError, match="existing path"):
        models.create_model("resnet10t", num_classes=2, weights=str(tmp_path / "nope.pth"))


def test_local_checkpoint_path_loads_backbone_weights(tmp_path):
    src = models.create_model("resnet10t", num_classes=4, weights="none")
    torch.save(src.state_dict(), tmp_path / "w.pth")
    dst = models.create_model("resnet10t", num_classes=2, weights=str(tmp_path / "w.pth"))
    assert torch.equal(dst.state_dict()["conv1.0.weight"], src.state_dict()["conv1.0.weight"])


def test_embedding_cache_computes_each_image_once(digits, tmp_path):
    cfg = RoundConfig(backbone="resnet10t", weights="none", image_size=32, num_workers=0, class_names=["a", "b"])
    ids = [r[0] for r in digits[:10]]
    paths = [r[1] for r in digits[:10]]
    store = EmbeddingStore(tmp_path)
    calls = []
    assert store.compute(ids[:6], paths[:6], cfg, progress=lambda d, t: calls.append((d, t))) == 6
    assert calls[-1] == (6, 6)
    first = store.get(ids[:6], cfg)
    assert first.dtype == np.float32
    assert first.shape == (6, 512)

    again = EmbeddingStore(tmp_path)  # a fresh process sees the shards on disk
    assert again.compute(ids[:6], paths[:6], cfg) == 0
    assert again.forward_batches == 0
    assert again.compute(ids, paths, cfg) == 4  # only the new ones
    np.testing.assert_allclose(again.get(ids[:6], cfg), first)
    # order follows the request
    np.testing.assert_allclose(again.get([ids[3], ids[0]], cfg), first[[3, 0]])
    with pytest.raises(KeyError):
        again.get([999_999], cfg)
    # another image size is another feature space
    assert again.missing(ids, RoundConfig(backbone="resnet10t", weights="none", image_size=64)) == ids


def test_an_upgrade_keeps_cached_jpeg_embeddings_and_recomputes_the_rest(digits, tmp_path):
    """A cache made before the current pixel rule (imaging.pixels): its JPEG embeddings are still right and are
    copied over; PNGs may be transparent or 16-bit, whose pixels the rule changed, so they are embedded again."""
    from PIL import Image

    cfg = RoundConfig(backbone="resnet10t", weights="none", image_size=32, num_workers=0, class_names=["a", "b"])
    jpeg = tmp_path / "photo.jpg"
    Image.open(digits[0][1]).convert("RGB").save(jpeg)
    png = tmp_path / "icon.png"
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(png)
    store = EmbeddingStore(tmp_path / "cache")
    old = np.full((2, 512), 7.0, dtype=np.float32)  # what the old rule's round had written
    store._append(store.folder(cfg, pixels=1, squash=False), np.array([1, 2]), old)

    assert store.compute([1, 2], [jpeg, png], cfg) == 1
    assert store.forward_batches == 1
    emb = store.get([1, 2], cfg)
    np.testing.assert_array_equal(emb[0], old[0])  # adopted, not recomputed
    assert not np.allclose(emb[1], old[1])  # the PNG got a fresh embedding
    assert EmbeddingStore(tmp_path / "cache").compute([1, 2], [jpeg, png], cfg) == 0


def test_the_squash_upgrade_recomputes_only_elongated_images(digits, tmp_path):
    """A cache made before the squash rule (imaging.shape): images no more elongated than 2:1 were seen the same
    way and keep their embeddings; a 3:1 image, cropped to its middle third before, is embedded again, whole.
    A JPEG from before the pixel rule is adopted only when it is not elongated either."""
    from PIL import Image

    cfg = RoundConfig(backbone="resnet10t", weights="none", image_size=32, num_workers=0, class_names=["a", "b"])
    square, wide, tall_jpeg, photo = (tmp_path / n for n in ("square.png", "wide.png", "tall.jpg", "photo.jpg"))
    Image.new("RGB", (40, 40), "white").save(square)
    Image.new("RGB", (120, 40), "white").save(wide)
    Image.new("RGB", (20, 70), "white").save(tall_jpeg)
    Image.open(digits[0][1]).convert("RGB").resize((48, 32)).save(photo)  # 3:2, a photo's shape
    store = EmbeddingStore(tmp_path / "cache")
    before = np.full((2, 512), 5.0, dtype=np.float32)
    store._append(store.folder(cfg, squash=False), np.array([1, 2]), before)
    older = np.full((2, 512), 7.0, dtype=np.float32)
    store._append(store.folder(cfg, pixels=1, squash=False), np.array([3, 4]), older)

    assert store.compute([1, 2, 3, 4], [square, wide, tall_jpeg, photo], cfg) == 2
    emb = store.get([1, 2, 3, 4], cfg)
    np.testing.assert_array_equal(emb[0], before[0])  # the square image: adopted
    np.testing.assert_array_equal(emb[3], older[1])  # the 3:2 JPEG from before the pixel rule: adopted
    assert not np.allclose(emb[1], before[1])  # the elongated ones: fresh
    assert not np.allclose(emb[2], older[0])
    assert store.folder(cfg).name.endswith("__sq2")
    assert store.folder(RoundConfig(**{**cfg.to_dict(), "squash_aspect": None})) == store.folder(cfg, squash=False)


def test_head_checkpoint_loads_in_plain_timm_and_reproduces_probabilities(tmp_path):
    torch.manual_seed(0)
    backbone = models.create_backbone("resnet10t", "none").eval()
    x = torch.rand(6, 3, 32, 32)
    with torch.inference_mode():
        feats = backbone(x).numpy()
    labels = [[0], [1], [2], [0], [1], [2]]
    head = fit_head(feats, labels, 3, l2=0.2).head
    expected = predict_head(head, feats)

    state = head_model_state(backbone, head, "resnet10t")
    save_checkpoint(tmp_path, state, {"architecture": "resnet10t", "class_names": ["a", "b", "c"]})

    plain = timm.create_model("resnet10t", num_classes=3)
    plain.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    with torch.inference_mode():
        got = plain.eval()(x).softmax(-1).numpy()
    assert np.abs(got - expected).max() < 1e-4
    _model, cfg = load_checkpoint(tmp_path)
    assert cfg["num_classes"] == 3
    assert cfg["class_names"] == ["a", "b", "c"]
    assert not list(tmp_path.glob("*.tmp"))


def test_folded_head_equals_standardized_head():
    head = LinearHead(torch.tensor([1.0, -2.0]), torch.tensor([2.0, 0.5]), 2)
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
        head.linear.bias.copy_(torch.tensor([0.1, -0.3]))
    w, b = head.folded()
    x = torch.randn(5, 2)
    torch.testing.assert_close(x @ w.T + b, head(x))


def test_flip_averaged_embeddings_ignore_mirroring_and_live_in_their_own_feature_space(digits, tmp_path):
    from PIL import Image, ImageOps

    originals = [r[1] for r in digits[:3]]
    mirrored = []
    for n, path in enumerate(originals):
        target = tmp_path / f"mirror-{n}.png"
        ImageOps.mirror(Image.open(path).convert("RGB")).save(target)
        mirrored.append(target)
    ids = [1, 2, 3, 101, 102, 103]
    paths = [*originals, *mirrored]
    base = {"backbone": "resnet10t", "weights": "none", "image_size": 32, "num_workers": 0, "class_names": ["a"]}
    averaged, plain = RoundConfig(**base), RoundConfig(**base, flip_average=False)
    assert averaged.flip_average  # the default
    torch.manual_seed(0)
    backbone = models.create_backbone("resnet10t", "none")  # random weights: one instance for both spaces
    store = EmbeddingStore(tmp_path / "cache")
    assert store.compute(ids, paths, averaged, model=backbone) == 6
    assert store.forward_batches == 1  # image and mirror go through one forward of the doubled batch
    emb = store.get(ids, averaged)
    # An image and its mirror get the same embedding (float16 shards: to about 1e-3 relative).
    scale = np.abs(emb).max()
    np.testing.assert_allclose(emb[:3], emb[3:], atol=2e-3 * scale)

    # Plain embeddings are another folder, computed afresh, and they do tell an image from its mirror.
    assert store.missing(ids, plain) == ids
    assert store.folder(plain) != store.folder(averaged)
    assert store.compute(ids, paths, plain, model=backbone) == 6
    flat = store.get(ids, plain)
    assert np.abs(flat[:3] - flat[3:]).max() > 0.01 * scale  # ten times the tolerance above
    # The average is the mean of the plain embeddings of the image and of its mirror.
    np.testing.assert_allclose(emb[:3], (flat[:3] + flat[3:]) / 2, atol=2e-3 * scale)
