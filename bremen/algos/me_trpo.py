"""ME-TRPO (Kurutach et al., 2018) on a fixed dataset: BREMEN's pipeline without behavior regularization.

The same dynamics ensemble, imaginary rollouts and TRPO step as BREMEN; what differs is where the policy
starts and how it explores:

* the policy starts from a fresh normc initialization (log σ ≈ −2.5), not from the behavior-cloned policy,
  so the trust region no longer keeps it near the data (BREMEN's implicit behavior regularization);
* actions are sampled from the policy's own distribution 𝒩(μ(s), σ(s)²) (``gaussian = 1``, no
  ``const_sampling``), so TRPO's ratios and KL use the distribution the actions came from;
* no explicit KL penalty towards the BC policy (α = 0);
* observations are normalized with the dataset's statistics, the ones BC computes. The original's
  ``--no_bc_init`` runs left the policy's normalizer at mean 0 / std 1 forever (FIDELITY.md, quirk 9);
  upstream ME-TRPO normalized its inputs, so this algorithm does too.

BC is still fitted, for the logged ``behavior_policy_kl_*`` and the BC row of the results table. The trust
region δ and the horizon H stay the task's (``--target_kl``, ``--max_path_length`` override them), so a
BREMEN and an ME-TRPO run with the same preset differ in exactly the points above.
"""

from __future__ import annotations

from typing import Any

NAME = "me_trpo"

FLAGS: dict[str, Any] = {"bc_init": False, "const_sampling": False, "gaussian": 1.0, "alpha": 0.0,
                         "dataset_normalizer": True}
"""Flag values this algorithm sets (after the preset, before ``--set`` and explicit flags)."""

LABEL = "ME-TRPO"
