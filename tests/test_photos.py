"load_photo: any photo -> the model's square RGB input, centre-cropped, with what it did said."
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from course_utils.photos import load_photo

IMAGES = Path(__file__).resolve().parents[1] / "images"


def stripes(w, h, mode="RGB"):
    "A w x h image whose columns count up (to see which part a crop kept)."
    a = np.tile((np.arange(w) % 256).astype(np.uint8)[None, :, None], (h, 1, 3))
    return Image.fromarray(a, "RGB").convert(mode)


@pytest.mark.parametrize("name", ["chelsea.jpg", "astronaut.jpg", "coffee.jpg"])
def test_the_course_photos_from_a_path(name, capsys):
    im = load_photo(IMAGES / name, 512)
    assert im.mode == "RGB" and im.size == (512, 512)
    said = capsys.readouterr().out
    assert said.startswith(name) and said.strip().endswith("512x512 RGB")


def test_landscape_keeps_the_middle_and_says_so(capsys):
    im = load_photo(stripes(300, 100), 100)
    assert im.size == (100, 100)
    cols = np.asarray(im)[0, :, 0]
    assert cols[0] == 100 and cols[-1] == 199  # x 100..200 of 300, untouched (no resize needed)
    assert capsys.readouterr().out.strip() == "photo: 300x100 RGB -> centre crop 100x100 (x 100..200) -> 100x100 RGB"


def test_portrait_crops_top_and_bottom_equally():
    a = np.zeros((90, 30, 3), np.uint8); a[30:60] = 255  # white band in the middle third
    assert (np.asarray(load_photo(a, 30, verbose=False)) == 255).all()


def test_small_photos_are_enlarged_large_ones_shrunk():
    assert load_photo(stripes(40, 40), 64, verbose=False).size == (64, 64)
    assert load_photo(stripes(1000, 800), 64, verbose=False).size == (64, 64)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "I;16", "1"])
def test_any_mode_becomes_rgb(mode):
    src = stripes(80, 60, "L" if mode == "I;16" else mode) if mode != "I;16" else Image.new("I;16", (80, 60), 1000)
    assert load_photo(src, 32, verbose=False).mode == "RGB"


def test_a_16_bit_greyscale_photo_keeps_its_tones(tmp_path):
    "A 16-bit PNG (0..65535) is scaled to 8 bits, v / 257, not clipped at 255 into white."
    a = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (64, 1))
    Image.fromarray(a).save(tmp_path / "scan.png")
    out = np.asarray(load_photo(tmp_path / "scan.png", 64, verbose=False))
    assert np.abs(out[0, :, 0].astype(int) - (a[0] / 257).round()).max() <= 1 and (out[..., 0] == out[..., 2]).all()


def test_transparency_is_laid_on_white():
    a = np.zeros((20, 20, 4), np.uint8)  # fully transparent black
    assert (np.asarray(load_photo(a, 20, verbose=False)) == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    im = stripes(60, 20)
    exif = im.getexif(); exif[0x0112] = 6  # "rotate 90° clockwise to view"
    im.save(tmp_path / "phone.jpg", exif=exif)
    assert Image.open(tmp_path / "phone.jpg").size == (60, 20)
    out = load_photo(tmp_path / "phone.jpg", 20, verbose=False)
    col = np.asarray(out)[:, 10, 0].astype(int)
    assert abs(col[0] - col[-1]) > 5  # stored rows became columns: the gradient now runs top to bottom


def test_models_give_the_size(toy):
    from course_utils.ledits import ddpm_invert
    im = load_photo(IMAGES / "coffee.jpg", toy, verbose=False)
    assert im.size == (64, 64)
    ddpm_invert(toy, im, num_inversion_steps=2, progress=False)  # the editors take it as it is


def test_the_size_comes_from_the_unet_not_the_vaes_config(toy):
    "Hub VAE configs' sample_size is not reliable (an inpainting repo's says 256 for a 512 model): UNet side x VAE factor."
    import copy, dataclasses
    from course_utils.latents import image_size
    vae = copy.deepcopy(toy.vae)
    vae.register_to_config(sample_size=256)
    m = dataclasses.replace(toy, vae=vae)
    assert image_size(m) == 64 and load_photo(IMAGES / "coffee.jpg", m, verbose=False).size == (64, 64)


@pytest.mark.parametrize("bad,size,err,match", [
    ("no/such/photo.jpg", 64, FileNotFoundError, "no photo"),
    (b"bytes", 64, TypeError, "file path"),
    (np.zeros((4, 4, 2), np.uint8), 64, ValueError, "uint8"),
    (np.zeros((4, 4, 3), np.float32), 64, ValueError, "uint8"),
    (Image.new("RGB", (8, 8)), 0, ValueError, "size"),
    (Image.new("RGB", (8, 8)), 64.0, ValueError, "size"),
])
def test_bad_input_is_a_clear_error(bad, size, err, match):
    with pytest.raises(err, match=match): load_photo(bad, size)


def test_the_editors_point_to_it():
    from course_utils.latents import pil_to_tensor
    with pytest.raises(ValueError, match="load_photo"): pil_to_tensor(Image.new("RGB", (30, 20)), 64)
    with pytest.raises(ValueError, match="load_photo"): pil_to_tensor(Image.new("L", (64, 64)), 64)


@pytest.fixture
def local_server():
    "An HTTP server on this machine's loopback serving images/ (no network needed): -> its base URL."
    import functools, http.server, threading
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(IMAGES))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown(); server.server_close()


def test_a_photo_from_a_url_is_the_photo_from_its_path(local_server, capsys):
    im = load_photo(f"{local_server}/coffee.jpg?raw=1", 64)
    said = capsys.readouterr().out
    assert np.array_equal(np.asarray(im), np.asarray(load_photo(IMAGES / "coffee.jpg", 64)))
    assert said == capsys.readouterr().out and said.startswith("coffee.jpg: ")   # named by its file, said alike
    with pytest.raises(ConnectionError, match="could not download .*save the photo"):
        load_photo(f"{local_server}/no_such_photo.jpg", 64)
