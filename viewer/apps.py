from django.apps import AppConfig


class ViewerConfig(AppConfig):
    name = "viewer"
    verbose_name = "Loupe archive and viewer"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import signals

        from viewer.services import audit

        signals.user_logged_in.connect(audit.on_user_logged_in, dispatch_uid="loupe-audit-login")
        signals.user_login_failed.connect(
            audit.on_user_login_failed, dispatch_uid="loupe-audit-login-failed"
        )
        signals.user_logged_out.connect(audit.on_user_logged_out, dispatch_uid="loupe-audit-logout")
