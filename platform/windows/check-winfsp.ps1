<#
.SYNOPSIS
  Checks that WinFsp is installed and usable for hfcachefs, and says what to do if not.
.DESCRIPTION
  Looks for WinFsp's install directory in the registry, its x64 DLL, the launcher
  (launchctl-x64.exe) and the WinFsp.Launcher service. Exits 0 when everything is there,
  1 otherwise (with the fix on stderr). Changes nothing.
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File platform\windows\check-winfsp.ps1
#>
[CmdletBinding()]
param()
$ErrorActionPreference = 'Stop'

function Get-WinFspDir {
    foreach ($key in 'HKLM:\SOFTWARE\WOW6432Node\WinFsp', 'HKLM:\SOFTWARE\WinFsp') {
        $p = Get-ItemProperty -Path $key -Name InstallDir -ErrorAction SilentlyContinue
        if ($p -and $p.InstallDir) { return $p.InstallDir }
    }
    return $null
}

$ok = $true
$dir = Get-WinFspDir
if (-not $dir) {
    Write-Error -ErrorAction Continue 'WinFsp is not installed. Install it (as administrator): winget install WinFsp.WinFsp  -- or the MSI from https://winfsp.dev/rel/ -- then run this check again.'
    exit 1
}
Write-Output "WinFsp install directory: $dir"

$dll = Join-Path $dir 'bin\winfsp-x64.dll'
if (Test-Path $dll) {
    $v = (Get-Item $dll).VersionInfo.ProductVersion
    Write-Output "winfsp-x64.dll: $dll (version $v)"
} else {
    Write-Error -ErrorAction Continue "missing ${dll}: repair the WinFsp installation (64-bit components)."
    $ok = $false
}

$launchctl = Join-Path $dir 'bin\launchctl-x64.exe'
if (Test-Path $launchctl) {
    Write-Output "launcher control: $launchctl"
} else {
    Write-Error -ErrorAction Continue "missing ${launchctl}: reinstall WinFsp with the 'Core' feature."
    $ok = $false
}

$svc = Get-Service -Name 'WinFsp.Launcher' -ErrorAction SilentlyContinue
if ($svc) {
    Write-Output "WinFsp.Launcher service: $($svc.Status)"
    if ($svc.Status -ne 'Running') {
        Write-Warning 'The launcher service is not running; launcher mounts (register-launcher.ps1) need it: Start-Service WinFsp.Launcher'
    }
} else {
    Write-Warning 'No WinFsp.Launcher service: launcher mounts are unavailable (logon-task mounts still work).'
}

$exe = Get-Command hfcachefs.exe -ErrorAction SilentlyContinue
if ($exe) { Write-Output "hfcachefs.exe: $($exe.Source)" }
else { Write-Output 'hfcachefs.exe is not on PATH (the other scripts take -Exe PATH).' }

if ($ok) { Write-Output 'WinFsp is ready for hfcachefs.'; exit 0 } else { exit 1 }
