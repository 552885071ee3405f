from django.contrib import admin
from django.urls import include, path

from chatkit import routes
from conversations.admin.login import login_limited

urlpatterns = [
    # Before the admin's own: the same sign-in, with its attempts limited.
    path(routes.ADMIN + "login/", login_limited(admin.site.login), name="admin-login"),
    path(routes.ADMIN, admin.site.urls),
    path("", include("conversations.api.urls")),
    path("", include("widget.urls")),
]

# JSON for API paths, Django's pages elsewhere.
handler400 = "conversations.api.errors.bad_request"
handler403 = "conversations.api.errors.permission_denied"
handler404 = "conversations.api.errors.page_not_found"
handler500 = "conversations.api.errors.server_error"
