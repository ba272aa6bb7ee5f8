"""Members, invitation and audit log pages in a real browser, at desktop and phone widths:
invite by link, join, change a role, remove (the removed person's page stops working), and read
and filter the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from audit.models import AuditEntry
from features.models import Membership
from tests.browser.conftest import Live, screenshot
from tests.conftest import make_story
from tests.factories import UserFactory
from tests.integration.processes import Stack

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def live_web(transactional_db: None) -> Iterator[Live]:
    """Only the web server: these pages start no runs."""
    story = make_story()
    stack = Stack({})
    url = stack.start_web()
    yield Live(url, stack, story)
    stack.stop()


def log_in(page: Page, live: Live, username: str, then: str) -> None:
    page.goto(f"{live.url}/login/?next={then}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}{then}")


def test_invite_join_change_role_and_remove(live_web: Live, page: Page, browser: Browser) -> None:
    live = live_web
    slug = live.story.workspace.slug
    UserFactory.create(username="dana")
    log_in(page, live, "alice", f"/w/{slug}/members/")

    page.select_option(".invite-form select[name=role]", "viewer")
    page.click("text=Create invitation link")
    link = page.locator("[data-invitation-link]")
    expect(link).to_be_visible()
    expect(page.locator(".invitations tbody tr")).to_have_count(1)
    screenshot(page, "members")
    path = re.sub(r"^https?://[^/]+", "", link.inner_text().strip())

    dana = browser.new_page()
    dana.goto(f"{live.url}{path}")
    dana.wait_for_url(re.compile(r"/login/"))  # the accept page asks for a login first
    dana.fill("input[name=username]", "dana")
    dana.fill("input[name=password]", "password")
    dana.click("button[type=submit]")
    dana.wait_for_url(f"{live.url}{path}")
    expect(dana.locator(".invitation-page")).to_contain_text("as a viewer")
    screenshot(dana, "invitation")
    dana.set_viewport_size(PHONE)
    screenshot(dana, "invitation-phone")
    dana.get_by_role("button", name=re.compile(r"^Join ")).click()
    expect(dana).to_have_url(f"{live.url}/w/{slug}/")
    assert Membership.objects.get(user__username="dana").role == "viewer"

    page.goto(f"{live.url}/w/{slug}/members/")  # not a reload: that would post the form again
    row = page.locator("tr", has_text="dana")
    row.locator("select[name=role]").select_option("member")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("tr", has_text="dana").locator(".role")).to_have_text("Member")
    page.set_viewport_size(PHONE)
    screenshot(page, "members-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.locator("tr", has_text="dana").get_by_role("button", name="Remove").click()
    expect(page.locator("tr", has_text="dana")).to_have_count(0)
    response = dana.reload()
    assert response is not None
    assert response.status == 404  # her open board no longer answers her
    dana.close()

    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert actions == {"invitation.create", "invitation.accept", "member.role", "member.remove"}


def test_the_audit_log_filters_in_the_url(live_web: Live, page: Page) -> None:
    live = live_web
    slug = live.story.workspace.slug
    log_in(page, live, "alice", f"/w/{slug}/members/")
    page.click("text=Create invitation link")
    page.click("text=Create invitation link")
    bob = Membership.objects.get(user__username="bob")
    page.locator(f"#member-{bob.pk} select[name=role]").select_option("admin")
    page.locator(f"#member-{bob.pk}").get_by_role("button", name="Save").click()
    expect(page.locator(f"#member-{bob.pk} .role")).to_have_text("Admin")

    page.click("nav >> text=Audit log")
    expect(page.locator(".audit tbody tr")).to_have_count(3)
    screenshot(page, "audit")

    page.select_option("select[name=action]", "member.role")
    page.click("text=Filter")
    page.wait_for_url(re.compile(r"action=member.role"))
    expect(page.locator(".audit tbody tr")).to_have_count(1)
    expect(page.locator(".audit tbody tr")).to_contain_text("member → admin")
    expect(page.locator("text=Export CSV")).to_have_attribute(
        "href", re.compile(r"/audit\.csv\?action=member\.role")
    )
    page.set_viewport_size(PHONE)
    page.goto(f"{live.url}/w/{slug}/audit/")
    screenshot(page, "audit-phone")


def test_a_new_workspace_from_a_template(live_web: Live, page: Page) -> None:
    live = live_web
    log_in(page, live, "vera", "/workspaces/new")
    page.fill("input[name=name]", "Payments team")
    page.check("input[name=template][value=product]")
    screenshot(page, "new-workspace")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(f"{live.url}/w/payments-team/")
    expect(page.locator(".board-page")).to_contain_text("Discovery")
    assert Membership.objects.get(workspace__slug="payments-team").role == "owner"
