"""The widget as a test sees it: locators into its (open) shadow root, and a few reads."""

from playwright.sync_api import Page, expect


class Widget:
    def __init__(self, page: Page):
        self.page = page
        root = page.locator("chatkit-widget")
        self.root = root
        self.launcher = root.locator(".l")
        self.panel = root.locator(".p")
        self.title = root.locator(".tt")
        self.input = root.get_by_role("textbox")
        self.send_button = root.get_by_role("button", name="Send", exact=True)
        self.stop_button = root.get_by_role("button", name="Stop", exact=True)
        self.messages = root.locator("li.m")
        self.visitor = root.locator("li.m.u")
        self.replies = root.locator("li.m.a")
        self.starters = root.locator(".st button")
        self.alert = root.get_by_role("alert")
        self.alert_text = self.alert.locator("span")
        self.live = root.locator("[aria-live=polite]")
        self.notice = root.locator(".nc")

    def ready(self) -> "Widget":
        expect(self.root.locator(".w")).to_be_attached()
        return self

    def open(self) -> "Widget":
        """Open the panel, unless it came back open (it was open on the previous page)."""
        if not self.panel.is_visible():
            self.launcher.click()
        expect(self.panel).to_be_visible()
        return self

    def send(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")

    def menu(self, item: str) -> None:
        self.root.get_by_role("button", name="More options").click()
        self.root.get_by_role("button", name=item).click()

    def focused(self) -> str:
        """What has the focus inside the widget: tag and class, or '' when it is outside."""
        return self.page.evaluate(
            """() => {
                const el = document.querySelector("chatkit-widget").shadowRoot.activeElement;
                return el ? (el.localName + "." + el.className).replace(/\\.$/, "") : "";
            }"""
        )

    def session_id(self, chat_url: str, assistant: str = "default") -> str | None:
        return self.page.evaluate(f"localStorage.getItem('chatkit:{chat_url}:{assistant}')")
