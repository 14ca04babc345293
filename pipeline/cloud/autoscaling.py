"""Application Auto Scaling for the real-time variant: target tracking on invocations per instance."""

from __future__ import annotations

from typing import Any

from pipeline.cloud.config import EndpointConfig
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
# Add capacity quickly, remove it slowly: a scale-in that overshoots costs latency, not money.
SCALE_OUT_COOLDOWN_S = 60
SCALE_IN_COOLDOWN_S = 300


def policy_configuration(endpoint: EndpointConfig) -> dict[str, Any]:
    return {
        "TargetValue": float(endpoint.autoscaling_target_invocations),
        "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
        "ScaleOutCooldown": SCALE_OUT_COOLDOWN_S,
        "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
    }


def current(autoscaling: Any, names: Names) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(scalable target, scaling policy) as registered now; None for what is absent."""
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ResourceIds=[names.scaling_resource_id], ScalableDimension=DIMENSION
    )["ScalableTargets"]
    policies = autoscaling.describe_scaling_policies(
        ServiceNamespace=NAMESPACE,
        ResourceId=names.scaling_resource_id,
        ScalableDimension=DIMENSION,
        PolicyNames=[names.scaling_policy],
    )["ScalingPolicies"]
    return (targets[0] if targets else None, policies[0] if policies else None)


def ensure(autoscaling: Any, names: Names, endpoint: EndpointConfig, progress: Progress) -> str:
    """Register the variant and its target-tracking policy; 'unchanged' when already as configured."""
    target, policy = current(autoscaling, names)
    wanted = policy_configuration(endpoint)
    if (
        target
        and target["MinCapacity"] == endpoint.autoscaling_min
        and target["MaxCapacity"] == endpoint.autoscaling_max
        and policy
        and _same_policy(policy.get("TargetTrackingScalingPolicyConfiguration", {}), wanted)
    ):
        progress.detail(
            f"autoscaling {endpoint.autoscaling_min}-{endpoint.autoscaling_max} instances already configured"
        )
        return "unchanged"
    autoscaling.register_scalable_target(
        ServiceNamespace=NAMESPACE,
        ResourceId=names.scaling_resource_id,
        ScalableDimension=DIMENSION,
        MinCapacity=endpoint.autoscaling_min,
        MaxCapacity=endpoint.autoscaling_max,
        Tags=names.tags,
    )
    autoscaling.put_scaling_policy(
        PolicyName=names.scaling_policy,
        ServiceNamespace=NAMESPACE,
        ResourceId=names.scaling_resource_id,
        ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=wanted,
    )
    progress.detail(
        f"autoscaling {endpoint.autoscaling_min}-{endpoint.autoscaling_max} instances, target "
        f"{endpoint.autoscaling_target_invocations} invocations/instance/minute"
    )
    return "configured"


def _same_policy(have: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(have.get(key) == value for key, value in want.items())


def remove(autoscaling: Any, names: Names) -> bool:
    """Delete the policy and deregister the variant; False if nothing was registered."""
    target, policy = current(autoscaling, names)
    if policy:
        autoscaling.delete_scaling_policy(
            PolicyName=names.scaling_policy,
            ServiceNamespace=NAMESPACE,
            ResourceId=names.scaling_resource_id,
            ScalableDimension=DIMENSION,
        )
    if target:
        autoscaling.deregister_scalable_target(
            ServiceNamespace=NAMESPACE, ResourceId=names.scaling_resource_id, ScalableDimension=DIMENSION
        )
    return bool(target or policy)
