<#
.SYNOPSIS
  Mounts a hub cache at every logon of the current user (a scheduled task; the recommended
  setup: the mount runs with the user's own NAS credentials).
.DESCRIPTION
  Registers the scheduled task "hfcachefs <mountpoint>" for the current user: at logon it runs
    hfcachefs.exe mount --foreground [-o OPTIONS] --log-file %LOCALAPPDATA%\hfcachefs\<drive>.log SOURCE MOUNTPOINT
  hidden, without a time limit, restarted up to 3 times a minute apart if it exits with an
  error. Starts it at once unless -NoStart.
.EXAMPLE
  .\install-logon-task.ps1 -Exe 'C:\Program Files\hfcachefs\hfcachefs.exe' -Source '\\nas\share\hub' -Mountpoint 'H:'
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [string] $Exe,
    [Parameter(Mandatory)] [string] $Source,
    [Parameter(Mandatory)] [string] $Mountpoint,
    # Mount options as for -o (e.g. 'ro' or 'ro,attr_timeout=5').
    [string] $Options = '',
    [switch] $NoStart
)
$ErrorActionPreference = 'Stop'

if (-not (Test-Path -LiteralPath $Exe -PathType Leaf)) { throw "no such file: $Exe" }
$Exe = (Resolve-Path -LiteralPath $Exe).Path
# A trailing backslash would escape the closing quote on the task's command line.
$Source = $Source.TrimEnd('\')
$Mountpoint = $Mountpoint.TrimEnd('\')
if (-not (Test-Path -LiteralPath $Source -PathType Container)) {
    throw "cannot reach the store $Source as $env:USERDOMAIN\$env:USERNAME (check the share and its permissions)"
}
$tag = ($Mountpoint -replace '[:\\/ ]', '_').Trim('_')
$logDir = Join-Path $env:LOCALAPPDATA 'hfcachefs'
New-Item -ItemType Directory -Path $logDir -Force | Out-Null
$log = Join-Path $logDir "$tag.log"

$argv = @('mount', '--foreground')
if ($Options) { $argv += @('-o', $Options) }
$argv += @('--log-file', "`"$log`"", "`"$Source`"", "`"$Mountpoint`"")
$taskName = "hfcachefs $tag"
$user = "$env:USERDOMAIN\$env:USERNAME"

$action = New-ScheduledTaskAction -Execute $Exe -Argument ($argv -join ' ')
$trigger = New-ScheduledTaskTrigger -AtLogOn -User $user
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) `
    -RestartCount 3 -RestartInterval (New-TimeSpan -Minutes 1) -Hidden `
    -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -MultipleInstances IgnoreNew
$principal = New-ScheduledTaskPrincipal -UserId $user -LogonType Interactive -RunLevel Limited

if ($PSCmdlet.ShouldProcess($taskName, 'register logon task')) {
    Register-ScheduledTask -TaskName $taskName -TaskPath '\hfcachefs\' -Action $action `
        -Trigger $trigger -Settings $settings -Principal $principal `
        -Description "Mount $Source at $Mountpoint with hfcachefs" -Force | Out-Null
    Write-Output "registered task \hfcachefs\$taskName ($Exe $($argv -join ' '))"
    if (-not $NoStart) {
        Start-ScheduledTask -TaskPath '\hfcachefs\' -TaskName $taskName
        Write-Output "started; log: $log"
    }
}
