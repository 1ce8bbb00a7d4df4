"""Payment provider gateways: one class per provider behind `base.PaymentGateway`."""
