from django.apps import AppConfig


class ViewerConfig(AppConfig):
    name = "viewer"
    verbose_name = "Loupe archive and viewer"
    default_auto_field = "django.db.models.BigAutoField"
