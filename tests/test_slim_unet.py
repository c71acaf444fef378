"""`toymodel.cut_unet` and scripts/slim_unet.py's variants: a cheaper UNet starts from the trained one's weights (stage 2c)."""
import copy
import importlib.util
from pathlib import Path
import torch
from course_utils.toyworld import model as toymodel

spec = importlib.util.spec_from_file_location("slim_unet", Path(__file__).resolve().parents[1] / "scripts" / "slim_unet.py")
slim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(slim)


def _unet_and_inputs():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x, c = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 7, 128, generator=g)
    return toymodel.new_unet().eval(), (x, torch.tensor([10, 700]), c)


def test_no_attn_keeps_every_other_weight():
    unet, _ = _unet_and_inputs()
    new, missing = toymodel.cut_unet(unet, slim.VARIANTS["no-attn"])
    old = unet.state_dict()
    assert missing == [] and not any(k.startswith(("down_blocks.0.attentions", "up_blocks.2.attentions")) for k in new.state_dict())
    for k, v in new.state_dict().items(): assert torch.equal(v, old[k]), k


def test_no_self_starts_as_the_unet_without_its_16x16_self_attention():
    unet, (x, t, c) = _unet_and_inputs()
    new, missing = toymodel.cut_unet(unet, slim.VARIANTS["no-self"])
    assert len(missing) == 6 and all(".attn1.to_k." in k or ".attn1.to_v." in k for k in missing)  # 3 blocks at 16x16
    ref = copy.deepcopy(unet)          # the reference: the same UNet with its 16x16 self-attention silenced
    for name, mod in ref.named_modules():
        if name.endswith(".attn1") and name.startswith(("down_blocks.0.", "up_blocks.2.")):
            mod.to_out[0].weight.data.zero_(); mod.to_out[0].bias.data.zero_()
    with torch.no_grad():
        torch.testing.assert_close(new.eval()(x, t, c).sample, ref(x, t, c).sample)
        assert not torch.allclose(unet(x, t, c).sample, ref(x, t, c).sample, atol=1e-4)   # it did something


def test_narrow_keeps_only_the_weights_that_fit_and_runs():
    unet, (x, t, c) = _unet_and_inputs()
    new, missing = toymodel.cut_unet(toymodel.cut_unet(unet)[0], slim.VARIANTS["narrow"])
    old, own = unet.state_dict(), new.state_dict()
    kept = [k for k in own if k not in missing]
    assert new.config.block_out_channels == (32, 64, 96) and "conv_in.weight" in kept and "down_blocks.0.resnets.0.conv1.weight" in kept
    assert any(k.startswith("down_blocks.2.") for k in missing) and all(torch.equal(own[k], old[k]) for k in kept)
    with torch.no_grad(): assert new.eval()(x, t, c).sample.shape == x.shape
