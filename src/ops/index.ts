export { AlertSender, ALERT_KINDS, checkWebhookUrl, defaultAlertSenderOptions, noAlerts, type Alert, type AlertKind, type Alerts, type AlertSenderInit, type AlertSenderOptions, type AlertSenderStats } from './alerts.js'
export { NodeWatch, defaultNodeWatchOptions, type NodeWatchInit, type NodeWatchOptions, type ReachabilitySource } from './watch.js'
export { renderUnit, unitName, SERVICE_ROLES, type ServiceRole, type UnitOptions } from './service.js'
export { checkForUpdate, compareVersions, defaultUpdateCheckOptions, type UpdateCheckOptions, type UpdateInfo } from './update.js'
