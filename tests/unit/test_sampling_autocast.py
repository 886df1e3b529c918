"""course_lib.sampling_autocast: the samplers' mixed precision. Nothing on a CPU; on a GPU autocast in
autocast_dtype's dtype (fp16 on a T4, bf16 from Ampere on), checked with a patched compute capability as
the tests of autocast_dtype are; and the samplers keep x_t in float32 under autocast."""

import warnings

import pytest
import torch
from torch import nn

from course_lib import sampling_autocast
from course_lib.process.schedules import make_schedule
from course_lib.samplers.ddim import ddim_sample, timesteps
from course_lib.samplers.ddpm import ddpm_sample
from course_lib.samplers.flow import flow_euler_sample


class _Conv(nn.Module):
    """A network whose convolution autocast runs in the low-precision dtype."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x, t):
        return 0.1 * self.conv(x)


def test_a_no_op_on_the_cpu():
    model, x = _Conv(), torch.randn(2, 3, 8, 8)
    with sampling_autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
        assert model(x, None).dtype == torch.float32
    with sampling_autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("capability, dtype", [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                               ((9, 0), torch.bfloat16)])
def test_on_a_gpu_the_dtype_of_autocast_dtype(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    with warnings.catch_warnings():  # no GPU here: torch warns that it disables autocast
        warnings.simplefilter("ignore")
        context = sampling_autocast("cuda")
    assert isinstance(context, torch.autocast)
    assert (context.device, context.fast_dtype) == ("cuda", dtype)


@torch.no_grad()
def test_the_samplers_keep_x_in_float32_under_autocast():
    """bf16 autocast on the CPU stands in for a GPU's: the network's output is bf16, x_t stays float32."""
    model, schedule = _Conv().eval(), make_schedule("linear", 50)
    x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x_T, None).dtype == torch.bfloat16
        outs = [ddim_sample(model, schedule, x_T, timesteps(50, 5)),
                ddpm_sample(model, schedule, x_T, generator=torch.Generator().manual_seed(1)),
                flow_euler_sample(model, x_T, torch.linspace(1, 0, 5))]
    reference = ddim_sample(model, schedule, x_T, timesteps(50, 5))
    assert all(x.dtype == torch.float32 and torch.isfinite(x).all() for x in outs)
    torch.testing.assert_close(outs[0], reference, atol=0.05, rtol=0.05)  # bf16 keeps ~3 digits
