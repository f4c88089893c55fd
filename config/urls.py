from django.contrib import admin
from django.urls import include, path

from ehrlaunch import signin
from viewer import health, ratelimit

# The admin's sign-in form counts failed sign-ins as /login/ does (docs/security.md §15).
admin.site.login = ratelimit.sign_in_form(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("login/", signin.LoginView.as_view(), name="login"),
    path("logout/", signin.logout, name="logout"),
    path("oidc/authenticate/", signin.SsoStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", signin.SsoCallbackView.as_view(), name="oidc_authentication_callback"),
    path("admin/", admin.site.urls),
    path("api/", include("viewer.api.urls")),
    path("ehrlaunch/", include("ehrlaunch.urls")),
    path("dicom-web/", include("viewer.dicomweb.urls")),
    path("fhir/", include("viewer.fhir.urls")),
    path("", include("viewer.urls")),
]
