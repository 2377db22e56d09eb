"""Companies of a World in the sandbox HubSpot portal (`World(..., hubspot_companies=True)`).

Each world company becomes a HubSpot company (id `company_id_for(index)`) with its name,
domain, industry, head count and country, a revenue and, for about six in ten, an owner,
all drawn from the world's seed so a test can recompute them. Every contact whose email
domain is its company's domain has that company as its primary one: its
`associatedcompanyid` (state.py, at generation) and the association (here). People on
free mail or a competitor's address have none, as in a real portal.

Seeding walks every person once, so it is meant for test and demo worlds, not for the
million-person benchmark ones (which leave the option off and get no companies).
"""

from __future__ import annotations

import random
from datetime import timedelta

from connectors.sandbox.hubspot.associations import Associations
from connectors.sandbox.hubspot.objects import RecordStore, company_id_for
from connectors.sandbox.hubspot.state import PortalState, contact_id_for, seeded_company_id
from connectors.sandbox.world import IN_HUBSPOT

#: share of seeded companies with an owner
OWNED_SHARE = 0.6


def seed_companies(state: PortalState, store: RecordStore, links: Associations) -> None:
    """Put the world's companies in `store` and link each contact to its company."""
    world = state.world
    owners = sorted(o.id for o in state.owners if not o.archived)
    for index in range(world.companies):
        company = world.company(index)
        rng = random.Random(f"hubspot-company:{world.seed}:{index}")
        created = world.now - timedelta(days=200 + rng.randrange(400))
        modified = created + timedelta(days=rng.randrange(150))
        owner = owners[rng.randrange(len(owners))] if owners and \
            rng.random() < OWNED_SHARE else None
        store.seed(company_id_for(index), {
            "name": company.name, "domain": company.domain,
            "industry": company.industry or None,
            "numberofemployees": str(company.employees),
            "annualrevenue": str(company.employees * rng.randrange(80, 250) * 1000),
            "country": company.country or None, "hubspot_owner_id": owner},
            created, modified)
    for index in range(world.size):
        if world.flags(index) & IN_HUBSPOT:
            person = world.person(index, with_activities=False)
            company_id = seeded_company_id(world, person)
            if company_id is not None:
                links.link_seeded(contact_id_for(index), company_id)
