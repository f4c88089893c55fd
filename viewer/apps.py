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

        # Roles are remembered per process for a few seconds (viewer.access); a change of
        # group membership made in this process takes effect at once.
        from django.contrib.auth.models import User
        from django.db.models.signals import m2m_changed

        from viewer import roles

        def forget(sender: object, instance: object, **kwargs: object) -> None:
            roles.forget_roles(
                getattr(instance, "pk", None) if isinstance(instance, User) else None
            )

        m2m_changed.connect(
            forget, sender=User.groups.through, weak=False, dispatch_uid="loupe-roles"
        )
