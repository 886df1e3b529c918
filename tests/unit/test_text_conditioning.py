"""The text encoder (a pre-norm transformer equal to torch's TransformerEncoderLayer with the same weights,
padding ignored), the LatentDenoiser, caption dropout (CFG Alg. 1) and text classifier-free guidance:
w = 0 unconditional, w = 1 conditional, one batched pass equal to two, negative prompts."""

import pytest
import torch

from course_lib.data.captions import BOS_ID, PAD_ID, VOCAB, tokenize
from course_lib.process.diffusion import PredictionLoss
from course_lib.models import LatentDenoiser, LatentDenoiserConfig, TextEncoder, TextEncoderConfig, UNetConfig
from course_lib.process.schedules import make_schedule
from course_lib.process.text_guidance import CaptionDropoutLoss, drop_captions, text_cfg_model

UNET8 = dict(in_channels=4, image_size=8, channel_mult=(1, 2), attention_resolutions=(4,))


def _wake(model, scale=0.2):
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0, scale)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    text = TextEncoderConfig.tiny(len(VOCAB))
    return _wake(LatentDenoiser(LatentDenoiserConfig(text, UNetConfig.tiny(context_dim=text.width, **UNET8)))).double()


def test_transformer_layer_equals_torch_encoder_layer():
    c = TextEncoderConfig(len(VOCAB), width=16, num_layers=1, num_heads=4)
    enc = TextEncoder(c).double().eval()
    layer = enc.layers[0]
    ref = torch.nn.TransformerEncoderLayer(16, 4, dim_feedforward=64, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True).double().eval()
    ref.load_state_dict({"self_attn.in_proj_weight": layer.qkv.weight, "self_attn.in_proj_bias": layer.qkv.bias,
                         "self_attn.out_proj.weight": layer.proj.weight, "self_attn.out_proj.bias": layer.proj.bias,
                         "linear1.weight": layer.mlp[0].weight, "linear1.bias": layer.mlp[0].bias,
                         "linear2.weight": layer.mlp[2].weight, "linear2.bias": layer.mlp[2].bias,
                         "norm1.weight": layer.norm1.weight, "norm1.bias": layer.norm1.bias,
                         "norm2.weight": layer.norm2.weight, "norm2.bias": layer.norm2.bias})
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    mask = torch.tensor([[True] * 6, [True, True, True, False, False, False]])
    expected = ref(x, src_key_padding_mask=~mask)
    torch.testing.assert_close(layer(x, mask)[mask], expected[mask], rtol=1e-10, atol=1e-12)


def test_text_encoder_mask_and_padding():
    enc = TextEncoder(TextEncoderConfig.tiny(len(VOCAB), num_layers=2)).eval()
    short, long = tokenize(["a photo of a cat", ""], max_len=6), tokenize(["a photo of a cat", ""], max_len=8)
    (c6, m6), (c8, m8) = enc(short), enc(long)
    assert c8.shape == (2, 8, 32) and m8.dtype == torch.bool
    assert m8[0].tolist() == [True] * 6 + [False] * 2 and m8[1].tolist() == [True] + [False] * 7  # BOS kept
    torch.testing.assert_close(c8[:, :6][m6], c6[m6])  # more padding changes nothing the mask keeps
    with pytest.raises(ValueError, match=r"long tensor \(B, L\) with 1 <= L <= 8"):
        enc(torch.zeros(2, 9, dtype=torch.long))


def test_empty_tokens_are_the_empty_caption(model):
    torch.testing.assert_close(model.empty_tokens(3, 8), tokenize([""] * 3))
    assert (BOS_ID, PAD_ID) == (model.config.text.bos_id, model.config.text.pad_id)


def test_config_round_trip_and_checks(model):
    c = model.config
    assert LatentDenoiserConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="context_dim"):
        LatentDenoiserConfig(c.text, UNetConfig.tiny(context_dim=8, **UNET8))


def _inputs(B=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    tokens = tokenize(["a photo of a red truck", "a dark photo of a blue ship", "a photo of a cat"][:B])
    return torch.randn(B, 4, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 1000, (B,), generator=g), tokens


class Counting:
    def __init__(self, model):
        self.model, self.batches = model, []
        self.empty_tokens = model.empty_tokens

    def __call__(self, z_t, t, tokens):
        self.batches.append(z_t.shape[0])
        return self.model(z_t, t, tokens)


@pytest.mark.parametrize("w", [0.0, 1.0, 3.0, torch.tensor([0.0, 2.0, 7.5], dtype=torch.float64)])
def test_text_cfg_equals_two_passes(model, w):
    z, t, tokens = _inputs()
    with torch.no_grad():
        eps_c, eps_u = model(z, t, tokens), model(z, t, model.empty_tokens(3, 8))
        assert (eps_c - eps_u).abs().mean() > 1e-3  # the caption matters
        counting = Counting(model)
        eps = text_cfg_model(counting, tokens, w)(z, t)
    wb = w.view(-1, 1, 1, 1) if isinstance(w, torch.Tensor) else w
    torch.testing.assert_close(eps, eps_u + wb * (eps_c - eps_u), rtol=1e-10, atol=1e-12)
    assert counting.batches == ([3] if isinstance(w, float) and w == 1.0 else [6])
    if isinstance(w, float) and w in (0.0, 1.0):
        torch.testing.assert_close(eps, eps_u if w == 0.0 else eps_c, rtol=1e-10, atol=1e-12)


def test_negative_prompt_takes_the_unconditional_place(model):
    z, t, tokens = _inputs()
    negative = tokenize("a photo of a dog")[0]  # (L,): the same for every sample
    with torch.no_grad():
        eps = text_cfg_model(model, tokens, 4.0, negative=negative)(z, t)
        eps_c, eps_n = model(z, t, tokens), model(z, t, negative.expand(3, -1))
    torch.testing.assert_close(eps, eps_n + 4.0 * (eps_c - eps_n), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="same length"):
        text_cfg_model(model, tokens, 2.0, negative=tokenize("a cat", max_len=4))


def test_drop_captions_and_the_loss(model):
    tokens = tokenize(["a photo of a red truck"] * 4)
    empty = tokenize("")[0]
    dropped = drop_captions(tokens, 0.5, empty, u=torch.tensor([0.1, 0.9, 0.49, 0.5]))
    assert [bool((row == empty).all()) for row in dropped] == [True, False, True, False]
    assert torch.equal(drop_captions(tokens, 0.0, empty), tokens)
    z0 = torch.randn(4, 4, 8, 8, dtype=torch.float64)
    schedule = make_schedule("linear", 1000)
    with torch.no_grad():  # p_uncond = 0: the plain loss on the captions, draw for draw
        ours = CaptionDropoutLoss(schedule, p_uncond=0.0)(model, (z0, tokens), torch.Generator().manual_seed(0))
        torch.rand(4, generator=(g := torch.Generator().manual_seed(0)))  # the dropout's draws come first
        plain = PredictionLoss(schedule)(lambda z_t, t: model(z_t, t, tokens), z0, g)
    torch.testing.assert_close(ours, plain)
    with pytest.raises(ValueError, match="p_uncond"):
        CaptionDropoutLoss(schedule, p_uncond=1.5)
