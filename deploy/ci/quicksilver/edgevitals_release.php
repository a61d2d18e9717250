<?php
/**
 * Pantheon Quicksilver hook: records a deploy as an edgevitals release, so the
 * edge can report what it changed (hit ratio, origin load, Core Web Vitals,
 * conversions) against the release before.
 *
 * Secrets (Pantheon Secrets Manager): edgevitals_admin (e.g.
 * https://edge.example.com:9145), edgevitals_token; optional edgevitals_site
 * (the site's name in edgevitals.toml, default: the Pantheon site name).
 */

if (!function_exists('pantheon_get_secret')) {
  fwrite(STDERR, "edgevitals: pantheon_get_secret() is not available\n");
  return;
}
$admin = rtrim((string) pantheon_get_secret('edgevitals_admin'), '/');
$token = (string) pantheon_get_secret('edgevitals_token');
if ($admin === '' || $token === '') {
  echo "edgevitals: secrets edgevitals_admin and edgevitals_token are not set; release not recorded\n";
  return;
}
$site = (string) (pantheon_get_secret('edgevitals_site') ?: ($_ENV['PANTHEON_SITE_NAME'] ?? ''));
$env = $_ENV['PANTHEON_ENVIRONMENT'] ?? 'unknown';
$ref = $_POST['deploy_tag'] ?? ($_POST['ref'] ?? '');
$id = preg_replace('/[^A-Za-z0-9._:+-]/', '-', $ref !== '' ? $ref : $env . '-' . gmdate('Ymd\THis'));
$note = trim(($_POST['deploy_message'] ?? '') . " ({$env})");

$body = json_encode(['site' => $site, 'id' => substr($id, 0, 64), 'note' => substr($note, 0, 1000)]);
$ch = curl_init($admin . '/api/releases');
curl_setopt_array($ch, [
  CURLOPT_POST => true,
  CURLOPT_POSTFIELDS => $body,
  CURLOPT_HTTPHEADER => ['Content-Type: application/json', 'Authorization: Bearer ' . $token],
  CURLOPT_RETURNTRANSFER => true,
  CURLOPT_TIMEOUT => 20,
]);
$answer = curl_exec($ch);
$code = curl_getinfo($ch, CURLINFO_HTTP_CODE);
curl_close($ch);

if ($code === 201) {
  echo "edgevitals: release {$id} of {$site} recorded\n";
} elseif ($code === 409) {
  echo "edgevitals: release {$id} of {$site} was already recorded\n";
} else {
  echo "edgevitals: recording release {$id} failed (HTTP {$code}): {$answer}\n";
}
