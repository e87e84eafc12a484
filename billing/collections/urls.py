"""Collections and accounting pages; the customer portal's money pages under ``my/``."""

from django.urls import path

from billing.collections import portal, views

app_name = "collections"
urlpatterns = [
    path("arrears/", views.arrears, name="arrears"),
    path("arrears.csv", views.arrears_csv, name="arrears_csv"),
    path("arrears/<int:site_id>/", views.arrears_site, name="arrears_site"),
    path("customers/<int:pk>/statement/", views.customer_statement, name="statement"),
    path("ledger/", views.ledger_home, name="ledger"),
    path("ledger/<int:site_id>/", views.ledger_site, name="ledger_site"),
    path("ledger/<int:site_id>/export.csv", views.gl_export, name="gl_export"),
    path("ledger/<int:site_id>/close/", views.period_close, name="period_close"),
    path("my/bills/", portal.my_bills, name="my_bills"),
    path("my/bills/<int:pk>/", portal.my_bill, name="my_bill"),
    path("my/bills/<int:pk>/pdf/", portal.my_bill_pdf, name="my_bill_pdf"),
    path("my/payments/", portal.my_payments, name="my_payments"),
    path("my/payments/<int:pk>/", portal.my_receipt, name="my_receipt"),
    path("my/payments/<int:pk>/pdf/", portal.my_receipt_pdf, name="my_receipt_pdf"),
    path("my/statement/", portal.my_statement, name="my_statement"),
    path("my/pay/", portal.my_pay, name="my_pay"),
]
