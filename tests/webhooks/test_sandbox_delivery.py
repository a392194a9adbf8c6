"""The sandbox delivering to a real receiver: what reaches the inbox, end to end."""

from __future__ import annotations

from .conftest import Rig

FIRST_SUPPLIER = 10000001  # the sandbox numbers suppliers from here


def test_sandbox_with_a_wrong_secret_gets_nothing_stored(rig: Rig):
    rig.sandbox.admin.unregister_webhook(rig.receiver.webhook_url())
    rig.sandbox.admin.register_webhook(rig.receiver.webhook_url(with_secret=False) + "?secret=x")
    supplier = rig.sandbox.admin.record("suppliers", FIRST_SUPPLIER)
    rig.sandbox.admin.touch("suppliers", [supplier["id"]])
    rig.flush()
    deliveries = rig.sandbox.admin.webhooks()["deliveries"]
    assert deliveries
    assert {d["status"] for d in deliveries} == {401}
    assert rig.receiver.inbox.depth() == 0
