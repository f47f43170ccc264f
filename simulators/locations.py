"""Where every plate physically is: sites, capacities, reservations and claims.

A *site* is a place a plate can sit: an instrument's own site (named after the
instrument), an incubator slot (``"<incubator>:slot N"``), or an extra site a mover
config declares (a hotel). Every method that can fail checks first and raises
:class:`~drivers.errors.StateError` before changing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.errors import StateError


@dataclass
class Site:
    """One place plates can sit.

    Attributes:
        name: site name.
        capacity: plates it holds at once.
        temperature_c: ambient temperature there (37 in an incubator slot, else 22).
        reachable: a plate mover may pick from / place on it (False for incubator slots).
        owner: instrument that registered it.
    """

    name: str
    capacity: int = 1
    temperature_c: float = 22.0
    reachable: bool = True
    owner: str = ""
    reserved: int = 0


@dataclass
class Locations:
    """Plate locations of one workcell."""

    sites: dict[str, Site] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)

    # -- sites -------------------------------------------------------------------------
    def register_site(
        self, name: str, capacity: int = 1, *, temperature_c: float = 22.0, reachable: bool = True, owner: str = ""
    ) -> Site:
        """Add a site, or update an existing one's properties (its plates stay)."""
        site = self.sites.get(name)
        if site is None:
            site = self.sites[name] = Site(name, capacity, temperature_c, reachable, owner or name)
        else:
            site.capacity, site.temperature_c, site.reachable = capacity, temperature_c, reachable
            site.owner = owner or site.owner
        return site

    def site(self, name: str, device: str = "workcell") -> Site:
        """The site ``name``.

        Raises:
            StateError: unknown site.
        """
        try:
            return self.sites[name]
        except KeyError:
            known = ", ".join(sorted(s for s, v in self.sites.items() if v.reachable)) or "none"
            raise StateError(device, f"unknown site {name!r} (known sites: {known})") from None

    def plates_at(self, site: str) -> list[str]:
        """Ids of the plates at ``site``, sorted."""
        return sorted(p for p, s in self.where.items() if s == site)

    def free(self, site: str) -> int:
        """Room left at ``site`` (capacity − plates − reservations)."""
        s = self.sites[site]
        return s.capacity - len(self.plates_at(site)) - s.reserved

    def site_of(self, plate_id: str) -> str | None:
        """Where ``plate_id`` is, or None when it was never placed (or was removed)."""
        return self.where.get(plate_id)

    def temperature_at(self, plate_id: str) -> float:
        """Ambient temperature (°C) at the plate's site (22 when unplaced)."""
        site = self.where.get(plate_id)
        return self.sites[site].temperature_c if site in self.sites else 22.0

    # -- checks ------------------------------------------------------------------------
    def require_at(self, plate_id: str, site: str, device: str) -> None:
        """Raises StateError unless ``plate_id`` is at ``site``."""
        here = self.where.get(plate_id)
        if here != site:
            where = f"at {here!r}" if here else "not placed anywhere (check it in first)"
            raise StateError(device, f"plate {plate_id!r} is {where}, not at {site!r}")

    def require_room(self, site: str, device: str) -> None:
        """Raises StateError when ``site`` is unknown or full."""
        if self.free(self.site(site, device).name) <= 0:
            raise StateError(device, f"site {site!r} is full ({', '.join(self.plates_at(site)) or 'reserved'})")

    def require_unclaimed(self, plate_id: str, device: str) -> None:
        """Raises StateError when another instrument is working on ``plate_id``."""
        owner = self.claims.get(plate_id)
        if owner is not None:
            raise StateError(device, f"plate {plate_id!r} is in use by {owner!r}")

    # -- changes -----------------------------------------------------------------------
    def place(self, plate_id: str, site: str, device: str = "workcell") -> None:
        """Put a plate that is nowhere yet at ``site`` (operator loading).

        Raises:
            StateError: the plate is already placed, or the site is unknown or full.
        """
        if plate_id in self.where:
            raise StateError(device, f"plate {plate_id!r} is already at {self.where[plate_id]!r}")
        self.require_room(site, device)
        self.where[plate_id] = site

    def move(self, plate_id: str, destination: str) -> None:
        """Move a plate (callers have checked and reserved; no checks here)."""
        self.where[plate_id] = destination

    def remove(self, plate_id: str, device: str = "workcell") -> str:
        """Take a plate out of the workcell (operator); returns the site it was at.

        Raises:
            StateError: the plate is not placed or is in use.
        """
        self.require_unclaimed(plate_id, device)
        if plate_id not in self.where:
            raise StateError(device, f"plate {plate_id!r} is not in the workcell")
        return self.where.pop(plate_id)

    def reserve(self, site: str) -> None:
        """Hold one place at ``site`` for a plate on its way."""
        self.sites[site].reserved += 1

    def unreserve(self, site: str) -> None:
        """Release a reservation made with :meth:`reserve`."""
        self.sites[site].reserved = max(0, self.sites[site].reserved - 1)

    def claim(self, plate_id: str, device: str) -> None:
        """Mark ``plate_id`` as being worked on by ``device``.

        Raises:
            StateError: another device holds it.
        """
        self.require_unclaimed(plate_id, device)
        self.claims[plate_id] = device

    def release(self, plate_id: str, device: str) -> None:
        """Drop ``device``'s claim on ``plate_id`` (no-op when it holds none)."""
        if self.claims.get(plate_id) == device:
            del self.claims[plate_id]
