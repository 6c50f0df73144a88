"""What one subsystem's planner contributes to a plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler import actions


@dataclass
class Partial:
    steps: list[actions.Step] = field(default_factory=list)
    in_flight: list[actions.InFlight] = field(default_factory=list)
    blocked: list[actions.Blocked] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)

    def extend(self, other: "Partial") -> None:
        self.steps.extend(other.steps)
        self.in_flight.extend(other.in_flight)
        self.blocked.extend(other.blocked)
        self.unmanaged.extend(other.unmanaged)
