// rclone-jupyter's JupyterLab extension: a status bar item saying whether the work is in the bucket, and a
// panel with the details and "Save now". Data comes from the server extension (rclone_jupyter/jupyterlab/extension.py).
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';
import { SyncPanel } from './panel';
import { StatusPoller } from './statusPoll';
import { SyncStatusItem } from './statusItem';

const OPEN = 'rclone-jupyter:open-sync-status';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'rclone-jupyter:plugin',
  description: 'Shows whether the data folder is saved to the bucket, with a panel and Save now.',
  autoStart: true,
  requires: [IStatusBar],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, statusBar: IStatusBar, palette: ICommandPalette | null) => {
    const poller = new StatusPoller();
    let panel: MainAreaWidget<SyncPanel> | null = null;
    app.commands.addCommand(OPEN, {
      label: 'Sync status (rclone-jupyter)',
      execute: () => {
        let current = panel;
        if (!current || current.isDisposed) {
          current = panel = new MainAreaWidget({ content: new SyncPanel(poller) });
          current.id = 'rclone-jupyter-sync-status';
          current.title.label = 'Sync status';
          app.shell.add(current, 'main');
        }
        app.shell.activateById(current.id);
        current.content.node.querySelector('button')?.focus();
      }
    });
    palette?.addItem({ command: OPEN, category: 'Data' });
    statusBar.registerStatusItem('rclone-jupyter:sync-status', {
      item: new SyncStatusItem(poller, () => void app.commands.execute(OPEN)),
      align: 'left',
      rank: 10
    });
  }
};

export default plugin;
