"""The benchmarks time course_lib against diffusers on the same work: check that it is the same work
(both loops of benchmarks/sampler_overhead.py give the same samples), so that a ratio compares like with like."""

import pytest
import torch

from helpers import load_benchmark

pytest.importorskip("diffusers")


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp_2m", "flow_euler"])
@pytest.mark.parametrize("steps", [1, 7])
def test_sampler_benchmark_loops_compute_the_same_samples(sampler, steps):
    bench = load_benchmark("sampler_overhead")
    torch.manual_seed(0)
    model = bench.PointwiseConv().eval()
    x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    fns = bench.samplers(sampler, model, steps, x_T)
    ours, theirs = fns["course_lib"](), fns["diffusers"]()
    assert ours.shape == x_T.shape and not torch.equal(ours, x_T)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
