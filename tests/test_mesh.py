"""The fsdp sharding rule: tensors of at least ``mesh.min_shard_bytes`` bytes are split."""

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from mmae_jax.train.mesh import tensor_sharding, tree_shardings

# An abstract mesh of 2 fsdp devices: the rule needs the axis sizes, not the devices.
MESH = jax.sharding.AbstractMesh((1, 2), ("data", "fsdp"))


def test_the_threshold_counts_bytes_not_elements():
    # 128 x 128 is 64 KiB in float32 and 32 KiB in bfloat16.
    assert tensor_sharding((128, 128), jnp.float32, MESH, 2 ** 16).spec == P(None, "fsdp")
    assert tensor_sharding((128, 128), jnp.bfloat16, MESH, 2 ** 16).spec == P()


def test_the_largest_divisible_axis_is_split_and_scalars_are_replicated():
    tree = {"kernel": jax.ShapeDtypeStruct((512, 129), jnp.float32), "step": jax.ShapeDtypeStruct((), jnp.int32)}
    shardings = tree_shardings(tree, MESH, 2 ** 16)
    assert shardings["kernel"].spec == P("fsdp", None)        # 129 is odd: the 512 axis is split
    assert shardings["step"].spec == P()
