from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.defaults import page_not_found, server_error

from api.problems import not_found_problem, server_error_problem
from ris.health import healthz
from ris.idle import session_idle
from ris.throttle import password_reset_throttled

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Before Django's own, under its name: the anonymous reset form, throttled per address.
    path(
        "accounts/password_reset/",
        password_reset_throttled(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    # Before Django's own, under its name: a logout needs no session. idle.js posts it when the clerk's
    # time is up; should the server's clock have ended the session a moment before, the POST still
    # logs out (nothing to end) and goes on to its `next` (log in, then back to the page), instead of
    # being sent to log in with the logout itself as the page to return to.
    path("accounts/logout/", login_not_required(auth_views.LogoutView.as_view()), name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("session/idle", session_idle, name="session_idle"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("worklist/", include("worklist_export.urls")),
    path("mwl/", include("mwl_server.urls")),
    path("api/", include("api.urls")),
    path("interface/", include("hl7_link.urls")),
    path("pacs/", include("pacs_link.urls")),
    path("reports/", include("reports.urls")),
    path("", include("scheduling.urls")),
]


def handler500(request):
    """A server error: a problem document for the API's callers, the error page for people."""
    if request.path.startswith("/api/"):
        return server_error_problem(request)
    return server_error(request)


def handler404(request, exception):
    """An address that names nothing: a problem document under /api/, the 404 page elsewhere."""
    if request.path.startswith("/api/"):
        return not_found_problem(request)
    return page_not_found(request, exception)
