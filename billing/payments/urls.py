"""Payments: pages (mounted at ``/payments/``) and the providers' callbacks.

With ``PAYMENT_CALLBACK_SECRET`` set, only the ``callback/<secret>/<method>/`` form
answers; without it, only ``callback/<method>/``.
"""

from django.urls import path

from billing.payments import views, webhooks

app_name = "payments"

urlpatterns = [
    path("", views.payment_list, name="list"),
    path("<int:pk>/", views.payment_detail, name="detail"),
    path("<int:pk>/receipt.pdf", views.receipt_pdf, name="receipt-pdf"),
    path("<int:pk>/reverse/", views.payment_reverse, name="reverse"),
    path("<int:pk>/refund/", views.refund_create, name="refund"),
    path("refunds/<int:pk>/decide/", views.refund_decide, name="refund-decide"),
    path("requests/<int:pk>/resolve/", views.request_resolve, name="request-resolve"),
    path("requests/<int:pk>/check/", views.request_check, name="request-check"),
    path("cash/", views.cash, name="cash"),
    path("cash/handover/", views.handover, name="handover"),
    path("settlements/", views.settlement_list, name="settlements"),
    path("settlements/<int:pk>/", views.settlement_detail, name="settlement"),
    path("field/", views.field_home, name="field"),
    path("field/<int:pk>/", views.field_customer, name="field-customer"),
    path("return/", webhooks.payer_return, name="return"),
    path("callback/<str:method>/", webhooks.callback, name="callback"),
    path("callback/<str:secret>/<str:method>/", webhooks.callback, name="callback-secret"),
]
