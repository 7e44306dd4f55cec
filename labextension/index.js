// This extension contributes no plugins.  The RISE slideshow app (jupyterlab-rise 0.43) is a
// separate web app whose bundle lacks @jupyterlab/console, and the ipywidgets 8 widget
// manager refuses to load without it ("Shared module @jupyterlab/console doesn't exist in
// shared scope", jupyterlab-contrib/rise#119), so sliders would not work in slides.
// package.json asks the builder to bundle @jupyterlab/console and offer it to other
// extensions; webpack offers a shared package only when the bundle references it, hence the
// import below, which is never called.  In JupyterLab itself the core's newer
// @jupyterlab/console wins, so this copy is never loaded there.
module.exports = [];
module.exports.provide = () => import('@jupyterlab/console');
