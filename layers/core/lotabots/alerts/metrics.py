"""Names of the alerting metrics that alarms read (imported by the CDK app: no dependencies)."""

# Published by alert_flush every run (EMF, dimension service=alert_flush): how long the
# longest-waiting alert group has waited for Slack to accept a notification, in seconds.
DELIVERY_LAG_METRIC = "AlertDeliveryLagSeconds"
# Notifications not yet accepted by Slack after the run.
UNDELIVERED_METRIC = "AlertNotificationsUndelivered"
