from django.apps import AppConfig


class PlantConfig(AppConfig):
    name = "metering.plant"
    label = "plant"
    verbose_name = "Plant"
