"""Fill the sites' hourly totals from the meters' hours already stored (the rollups keep
them from now on)."""

from django.db import migrations
from django.db.models import Count, Sum


def fill(apps, schema_editor):
    HourlyUsage = apps.get_model("metering", "HourlyUsage")
    SiteHourlyUsage = apps.get_model("metering", "SiteHourlyUsage")
    sums = (
        HourlyUsage.objects.filter(meter__site__isnull=False)
        .values("meter__site_id", "hour")
        .order_by()
        .annotate(kwh=Sum("kwh"), est=Sum("estimated_kwh"), meters=Count("id"))
    )
    batch = []
    for row in sums.iterator(chunk_size=5000):
        batch.append(
            SiteHourlyUsage(
                site_id=row["meter__site_id"],
                hour=row["hour"],
                kwh=row["kwh"],
                estimated_kwh=row["est"],
                meters=row["meters"],
            )
        )
        if len(batch) >= 5000:
            SiteHourlyUsage.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    SiteHourlyUsage.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("metering", "0005_manual_readings_site_hourly")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
