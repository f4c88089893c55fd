from django.apps import AppConfig


class EhrLaunchConfig(AppConfig):
    name = "ehrlaunch"
    verbose_name = "EHR launch"
