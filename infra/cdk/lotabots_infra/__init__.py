"""The LotaBots CDK app: one construct per capability, composed by `LotaBotsStack`.

Everything that varies between functions, queues and rules comes from `lotabots.topology`;
environment variable names come from the settings classes in `lotabots.config`.
"""
